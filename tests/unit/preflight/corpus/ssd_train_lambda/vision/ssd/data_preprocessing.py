# Corpus case, rewritten after qfgaohao/pytorch-ssd vision/ssd/data_preprocessing.py as it was at issue #55:
# TrainAugmentation keeps a Compose holding a lambda made in __init__.
from ..transforms.transforms import (
    Compose, ConvertFromInts, Expand, PhotometricDistort, RandomMirror, RandomSampleCrop, Resize, SubtractMeans,
    ToPercentCoords, ToTensor,
)


class TrainAugmentation:
    def __init__(self, size, mean=0, std=1.0):
        self.mean = mean
        self.size = size
        self.augment = Compose([
            ConvertFromInts(),
            PhotometricDistort(),
            Expand(self.mean),
            RandomSampleCrop(),
            RandomMirror(),
            ToPercentCoords(),
            Resize(self.size),
            SubtractMeans(self.mean),
            lambda img, boxes=None, labels=None: (img / std, boxes, labels),
            ToTensor(),
        ])

    def __call__(self, img, boxes, labels):
        return self.augment(img, boxes, labels)


class TestTransform:
    def __init__(self, size, mean=0.0, std=1.0):
        self.transform = Compose([
            ToPercentCoords(),
            Resize(size),
            SubtractMeans(mean),
            lambda img, boxes=None, labels=None: (img / std, boxes, labels),
            ToTensor(),
        ])

    def __call__(self, image, boxes, labels):
        return self.transform(image, boxes, labels)
