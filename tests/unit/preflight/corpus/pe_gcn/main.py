# Corpus case, rewritten after pytorch/examples gcn/main.py: lambdas only in map() while loading the
# graph; no DataLoader, no process.
import argparse
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class GraphConv(nn.Module):
    def __init__(self, input_dim, output_dim):
        super().__init__()
        self.kernel = nn.Parameter(torch.FloatTensor(input_dim, output_dim))
        nn.init.xavier_normal_(self.kernel)

    def forward(self, input_tensor, adj_mat):
        return torch.spmm(adj_mat, torch.mm(input_tensor, self.kernel))


class GCN(nn.Module):
    def __init__(self, input_dim, hidden_dim, output_dim, dropout=0.1):
        super().__init__()
        self.gc1 = GraphConv(input_dim, hidden_dim)
        self.gc2 = GraphConv(hidden_dim, output_dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, input_tensor, adj_mat):
        x = self.dropout(F.relu(self.gc1(input_tensor, adj_mat)))
        return self.gc2(x, adj_mat)


def load_cora(path="./cora", device="cpu"):
    content = np.genfromtxt(os.path.join(path, "cora.content"), dtype=np.dtype(str))
    cites = np.genfromtxt(os.path.join(path, "cora.cites"), dtype=np.dtype(str))
    features = torch.FloatTensor(content[:, 1:-1].astype(np.int32))
    labels = torch.LongTensor(np.unique(content[:, -1], return_inverse=True)[1])
    idx_map = {id: i for i, id in enumerate(content[:, 0].astype(np.int32))}
    edges = np.array(list(map(lambda edge: [idx_map[edge[0]], idx_map[edge[1]]],
                              cites.astype(np.int32))), dtype=np.int32)
    v = torch.ones(edges.shape[0])
    adj = torch.sparse_coo_tensor(torch.LongTensor(edges.T), v, (labels.shape[0], labels.shape[0]))
    return features.to(device), labels.to(device), adj.to(device)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="PyTorch Graph Convolutional Network")
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--no-accel", action="store_true")
    args = parser.parse_args()
    use_accel = not args.no_accel and torch.accelerator.is_available()
    device = torch.accelerator.current_accelerator() if use_accel else torch.device("cpu")
    features, labels, adj_mat = load_cora(device=device)
    gcn = GCN(features.shape[1], 16, int(labels.max()) + 1).to(device)
    optimizer = torch.optim.Adam(gcn.parameters(), lr=args.lr, weight_decay=5e-4)
    for epoch in range(args.epochs):
        optimizer.zero_grad()
        loss = F.cross_entropy(gcn(features, adj_mat), labels)
        loss.backward()
        optimizer.step()
    print(f"final loss {loss.item():.4f}")
