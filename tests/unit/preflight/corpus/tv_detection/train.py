# Corpus case, rewritten after pytorch/vision references/detection/train.py: collate_fn is a
# module-level function of the local utils module; loaders use --workers; run under torchrun.
import datetime
import os
import time

import torch
import torch.utils.data
import torchvision
import utils
from torchvision.transforms import v2 as T


def get_transform(is_train):
    transforms = [T.ToImage()]
    if is_train:
        transforms.append(T.RandomHorizontalFlip(0.5))
    transforms.append(T.ToDtype(torch.float, scale=True))
    return T.Compose(transforms)


def main(args):
    utils.init_distributed_mode(args)
    device = torch.device(args.device)
    dataset = torchvision.datasets.CocoDetection(os.path.join(args.data_path, "train2017"),
                                                 os.path.join(args.data_path, "annotations/instances_train2017.json"),
                                                 transforms=get_transform(True))
    dataset = torchvision.datasets.wrap_dataset_for_transforms_v2(dataset)
    if args.distributed:
        train_sampler = torch.utils.data.distributed.DistributedSampler(dataset)
    else:
        train_sampler = torch.utils.data.RandomSampler(dataset)
    train_batch_sampler = torch.utils.data.BatchSampler(train_sampler, args.batch_size, drop_last=True)
    data_loader = torch.utils.data.DataLoader(
        dataset, batch_sampler=train_batch_sampler, num_workers=args.workers, collate_fn=utils.collate_fn
    )
    model = torchvision.models.get_model(args.model, weights=None, weights_backbone=None, num_classes=91)
    model.to(device)
    if args.distributed:
        model = torch.nn.parallel.DistributedDataParallel(model, device_ids=[args.gpu])
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=args.lr, momentum=0.9, weight_decay=1e-4)
    start_time = time.time()
    for epoch in range(args.epochs):
        if args.distributed:
            train_sampler.set_epoch(epoch)
        model.train()
        for images, targets in data_loader:
            images = [image.to(device) for image in images]
            targets = [{k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in t.items()} for t in targets]
            losses = sum(model(images, targets).values())
            optimizer.zero_grad()
            losses.backward()
            optimizer.step()
    print(f"Training time {datetime.timedelta(seconds=int(time.time() - start_time))}")


def get_args_parser(add_help=True):
    import argparse

    parser = argparse.ArgumentParser(description="PyTorch Detection Training", add_help=add_help)
    parser.add_argument("--data-path", default="/datasets01/COCO/022719/", type=str)
    parser.add_argument("--model", default="maskrcnn_resnet50_fpn", type=str)
    parser.add_argument("--device", default="cuda", type=str)
    parser.add_argument("-b", "--batch-size", default=2, type=int)
    parser.add_argument("--epochs", default=26, type=int)
    parser.add_argument("-j", "--workers", default=4, type=int, help="number of data loading workers (default: 4)")
    parser.add_argument("--lr", default=0.02, type=float)
    return parser


if __name__ == "__main__":
    args = get_args_parser().parse_args()
    main(args)
