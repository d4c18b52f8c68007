# Corpus case, rewritten after guoyang9/BPR-pytorch main.py (issue #1: "An attempt has been made to
# start a new process before the current process has finished its bootstrapping phase"): the whole
# script runs at module level; the training DataLoader has num_workers=4.
import argparse
import os
import time

import config
import data_utils
import evaluate
import model
import numpy as np
import torch
import torch.backends.cudnn as cudnn
import torch.optim as optim
import torch.utils.data as data

parser = argparse.ArgumentParser()
parser.add_argument("--lr", type=float, default=0.01, help="learning rate")
parser.add_argument("--lamda", type=float, default=0.001, help="model regularization rate")
parser.add_argument("--batch_size", type=int, default=4096, help="batch size for training")
parser.add_argument("--epochs", type=int, default=50, help="training epoches")
parser.add_argument("--top_k", type=int, default=10)
parser.add_argument("--factor_num", type=int, default=32)
parser.add_argument("--num_ng", type=int, default=4)
parser.add_argument("--test_num_ng", type=int, default=99)
parser.add_argument("--gpu", type=str, default="0", help="gpu card ID")
args = parser.parse_args()

os.environ["CUDA_VISIBLE_DEVICES"] = args.gpu
cudnn.benchmark = True

train_data, test_data, user_num, item_num, train_mat = data_utils.load_all()
train_dataset = data_utils.BPRData(train_data, item_num, train_mat, args.num_ng, True)
test_dataset = data_utils.BPRData(test_data, item_num, train_mat, 0, False)
train_loader = data.DataLoader(train_dataset, batch_size=args.batch_size, shuffle=True, num_workers=4)
test_loader = data.DataLoader(test_dataset, batch_size=args.test_num_ng + 1, shuffle=False, num_workers=0)

model = model.BPR(user_num, item_num, args.factor_num)
model.cuda()
optimizer = optim.SGD(model.parameters(), lr=args.lr, weight_decay=args.lamda)

best_hr = 0
for epoch in range(args.epochs):
    model.train()
    start_time = time.time()
    train_loader.dataset.ng_sample()
    for user, item_i, item_j in train_loader:
        user, item_i, item_j = user.cuda(), item_i.cuda(), item_j.cuda()
        model.zero_grad()
        prediction_i, prediction_j = model(user, item_i, item_j)
        loss = -(prediction_i - prediction_j).sigmoid().log().sum()
        loss.backward()
        optimizer.step()
    model.eval()
    HR, NDCG = evaluate.metrics(model, test_loader, args.top_k)
    print(f"epoch {epoch:03d} {time.time() - start_time:.1f}s HR {np.mean(HR):.3f} NDCG {np.mean(NDCG):.3f}")
    if HR > best_hr:
        best_hr = HR
        torch.save(model, f"{config.model_path}BPR.pt")
