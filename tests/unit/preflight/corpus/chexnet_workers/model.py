# Corpus case, rewritten after arnoweng/CheXNet model.py as it was when issue #5 was filed ("Can't pickle
# local object 'main.<locals>.<lambda>'" on Windows): TenCrop lambdas inline in the dataset's Compose,
# a DataLoader with num_workers=8 inside main().
import os

import torch
import torch.nn as nn
import torchvision
import torchvision.transforms as transforms
from read_data import ChestXrayDataSet
from torch.utils.data import DataLoader

CKPT_PATH = "model.pth.tar"
N_CLASSES = 14
DATA_DIR = "./ChestX-ray14/images"
TEST_IMAGE_LIST = "./ChestX-ray14/labels/test_list.txt"
BATCH_SIZE = 64


def main():
    model = DenseNet121(N_CLASSES).cuda()
    model = torch.nn.DataParallel(model).cuda()
    if os.path.isfile(CKPT_PATH):
        checkpoint = torch.load(CKPT_PATH)
        model.load_state_dict(checkpoint["state_dict"])

    normalize = transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
    test_dataset = ChestXrayDataSet(data_dir=DATA_DIR,
                                    image_list_file=TEST_IMAGE_LIST,
                                    transform=transforms.Compose([
                                        transforms.Resize(256),
                                        transforms.TenCrop(224),
                                        transforms.Lambda
                                        (lambda crops: torch.stack([transforms.ToTensor()(crop) for crop in crops])),
                                        transforms.Lambda
                                        (lambda crops: torch.stack([normalize(crop) for crop in crops]))
                                    ]))
    test_loader = DataLoader(dataset=test_dataset, batch_size=BATCH_SIZE, shuffle=False, num_workers=8, pin_memory=True)

    gt = torch.FloatTensor().cuda()
    pred = torch.FloatTensor().cuda()
    model.eval()
    for i, (inp, target) in enumerate(test_loader):
        target = target.cuda()
        gt = torch.cat((gt, target), 0)
        bs, n_crops, c, h, w = inp.size()
        with torch.no_grad():
            output = model(inp.view(-1, c, h, w).cuda())
        pred = torch.cat((pred, output.view(bs, n_crops, -1).mean(1)), 0)
    print(pred.shape, gt.shape)


class DenseNet121(nn.Module):
    def __init__(self, out_size):
        super().__init__()
        self.densenet121 = torchvision.models.densenet121(weights=None)
        num_ftrs = self.densenet121.classifier.in_features
        self.densenet121.classifier = nn.Sequential(nn.Linear(num_ftrs, out_size), nn.Sigmoid())

    def forward(self, x):
        return self.densenet121(x)


if __name__ == "__main__":
    main()
