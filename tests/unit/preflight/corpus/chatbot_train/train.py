# Corpus case, rewritten after patrickloeber/pytorch-chatbot train.py (issue #2, the bootstrapping
# RuntimeError on Windows): everything at module level; the DataLoader has num_workers=2.
import json

import numpy as np
import torch
import torch.nn as nn
from model import NeuralNet
from nltk_utils import bag_of_words, stem, tokenize
from torch.utils.data import DataLoader, Dataset

with open("intents.json") as json_data:
    intents = json.load(json_data)

all_words = []
tags = []
xy = []
for intent in intents["intents"]:
    tag = intent["tag"]
    tags.append(tag)
    for pattern in intent["patterns"]:
        w = tokenize(pattern)
        all_words.extend(w)
        xy.append((w, tag))

ignore_words = ["?", ".", "!"]
all_words = sorted({stem(w) for w in all_words if w not in ignore_words})
tags = sorted(set(tags))

X_train = np.array([bag_of_words(words, all_words) for words, _ in xy])
y_train = np.array([tags.index(tag) for _, tag in xy])

device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
input_size, hidden_size, output_size = len(X_train[0]), 8, len(tags)
num_epochs, batch_size, learning_rate = 1000, 8, 0.001

model = NeuralNet(input_size, hidden_size, output_size).to(device)
criterion = nn.CrossEntropyLoss()
optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)


class ChatDataset(Dataset):
    def __init__(self):
        self.n_samples = len(X_train)
        self.x_data = X_train
        self.y_data = y_train

    def __getitem__(self, index):
        return self.x_data[index], self.y_data[index]

    def __len__(self):
        return self.n_samples


dataset = ChatDataset()
train_loader = DataLoader(dataset=dataset, batch_size=batch_size, shuffle=True, num_workers=2)

for epoch in range(num_epochs):
    for i, (words, labels) in enumerate(train_loader):
        words = words.to(device)
        labels = labels.to(device)
        loss = criterion(model(words), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    if (epoch + 1) % 100 == 0:
        print(f"Epoch [{epoch + 1}/{num_epochs}], Loss: {loss.item():.4f}")

torch.save({"model_state": model.state_dict(), "all_words": all_words, "tags": tags}, "data.pth")
