# Corpus case, rewritten after cure-lab/LTSF-Linear exp/exp_main.py (with exp_basic.py folded in).
import os
import time

import torch
import torch.nn as nn
from data_provider.data_factory import data_provider
from torch import optim


class Exp_Main:
    def __init__(self, args):
        self.args = args
        self.device = torch.device(f"cuda:{args.gpu}") if args.use_gpu else torch.device("cpu")
        self.model = nn.Linear(args.seq_len, args.pred_len).to(self.device)

    def _get_data(self, flag):
        return data_provider(self.args, flag)

    def train(self, setting):
        train_data, train_loader = self._get_data(flag="train")
        path = os.path.join("./checkpoints/", setting)
        os.makedirs(path, exist_ok=True)
        model_optim = optim.Adam(self.model.parameters(), lr=self.args.learning_rate)
        criterion = nn.MSELoss()
        for epoch in range(self.args.train_epochs):
            epoch_time = time.time()
            self.model.train()
            for i, (batch_x, batch_y) in enumerate(train_loader):
                model_optim.zero_grad()
                outputs = self.model(batch_x.float().to(self.device))
                loss = criterion(outputs, batch_y.float().to(self.device))
                loss.backward()
                model_optim.step()
            print(f"Epoch: {epoch + 1} cost time: {time.time() - epoch_time}")
        torch.save(self.model.state_dict(), os.path.join(path, "checkpoint.pth"))
        return self.model

    def test(self, setting, test=0):
        test_data, test_loader = self._get_data(flag="test")
        self.model.eval()
        with torch.no_grad():
            for i, (batch_x, batch_y) in enumerate(test_loader):
                self.model(batch_x.float().to(self.device))
