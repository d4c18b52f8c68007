# Corpus case, rewritten after pytorch/examples word_language_model/main.py: a module-level script
# without DataLoader or processes (batches are sliced from tensors on the device).
import argparse
import math
import time

import data
import model
import torch
import torch.nn as nn

parser = argparse.ArgumentParser(description="PyTorch Wikitext-2 RNN/LSTM/GRU/Transformer Language Model")
parser.add_argument("--data", type=str, default="./data/wikitext-2")
parser.add_argument("--model", type=str, default="LSTM")
parser.add_argument("--emsize", type=int, default=200)
parser.add_argument("--nhid", type=int, default=200)
parser.add_argument("--nlayers", type=int, default=2)
parser.add_argument("--lr", type=float, default=20)
parser.add_argument("--epochs", type=int, default=40)
parser.add_argument("--batch_size", type=int, default=20)
parser.add_argument("--bptt", type=int, default=35)
parser.add_argument("--seed", type=int, default=1111)
parser.add_argument("--accel", action="store_true")
args = parser.parse_args()

torch.manual_seed(args.seed)
device = torch.accelerator.current_accelerator() if args.accel and torch.accelerator.is_available() else torch.device("cpu")
corpus = data.Corpus(args.data)


def batchify(data, bsz):
    nbatch = data.size(0) // bsz
    data = data.narrow(0, 0, nbatch * bsz)
    return data.view(bsz, -1).t().contiguous().to(device)


train_data = batchify(corpus.train, args.batch_size)
ntokens = len(corpus.dictionary)
net = model.RNNModel(args.model, ntokens, args.emsize, args.nhid, args.nlayers).to(device)
criterion = nn.NLLLoss()


def get_batch(source, i):
    seq_len = min(args.bptt, len(source) - 1 - i)
    return source[i:i + seq_len], source[i + 1:i + 1 + seq_len].view(-1)


def train(lr):
    net.train()
    hidden = net.init_hidden(args.batch_size)
    start_time = time.time()
    for batch, i in enumerate(range(0, train_data.size(0) - 1, args.bptt)):
        data_, targets = get_batch(train_data, i)
        net.zero_grad()
        hidden = tuple(h.detach() for h in hidden)
        output, hidden = net(data_, hidden)
        loss = criterion(output, targets)
        loss.backward()
        for p in net.parameters():
            p.data.add_(p.grad, alpha=-lr)
    print(f"{time.time() - start_time:.1f}s, ppl {math.exp(loss.item()):.2f}")


lr = args.lr
for epoch in range(1, args.epochs + 1):
    train(lr)
