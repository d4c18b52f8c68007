# Corpus case, rewritten after pytorch/examples super_resolution/data.py and dataset.py.
from os import listdir
from os.path import join

from PIL import Image
from torch.utils.data import Dataset
from torchvision.transforms import CenterCrop, Compose, Resize, ToTensor


def load_img(filepath):
    y, _, _ = Image.open(filepath).convert("YCbCr").split()
    return y


class DatasetFromFolder(Dataset):
    def __init__(self, image_dir, input_transform=None, target_transform=None):
        super().__init__()
        self.image_filenames = [join(image_dir, x) for x in listdir(image_dir)]
        self.input_transform = input_transform
        self.target_transform = target_transform

    def __getitem__(self, index):
        image = load_img(self.image_filenames[index])
        target = image.copy()
        if self.input_transform:
            image = self.input_transform(image)
        if self.target_transform:
            target = self.target_transform(target)
        return image, target

    def __len__(self):
        return len(self.image_filenames)


def calculate_valid_crop_size(crop_size, upscale_factor):
    return crop_size - (crop_size % upscale_factor)


def input_transform(crop_size, upscale_factor):
    return Compose([CenterCrop(crop_size), Resize(crop_size // upscale_factor), ToTensor()])


def target_transform(crop_size):
    return Compose([CenterCrop(crop_size), ToTensor()])


def get_training_set(upscale_factor, root_dir="dataset/BSDS300/images"):
    crop_size = calculate_valid_crop_size(256, upscale_factor)
    return DatasetFromFolder(join(root_dir, "train"),
                             input_transform=input_transform(crop_size, upscale_factor),
                             target_transform=target_transform(crop_size))


def get_test_set(upscale_factor, root_dir="dataset/BSDS300/images"):
    crop_size = calculate_valid_crop_size(256, upscale_factor)
    return DatasetFromFolder(join(root_dir, "test"),
                             input_transform=input_transform(crop_size, upscale_factor),
                             target_transform=target_transform(crop_size))
