# Corpus case, rewritten after junyanz/pytorch-CycleGAN-and-pix2pix data/__init__.py.
import torch.utils.data

from data.base_dataset import BaseDataset
from data.unaligned_dataset import UnalignedDataset


def create_dataset(opt):
    data_loader = CustomDatasetDataLoader(opt)
    return data_loader.load_data()


class CustomDatasetDataLoader:
    """Wrapper class of Dataset class that performs multi-threaded data loading"""

    def __init__(self, opt):
        self.opt = opt
        self.dataset = UnalignedDataset(opt)
        assert isinstance(self.dataset, BaseDataset)
        self.dataloader = torch.utils.data.DataLoader(
            self.dataset,
            batch_size=opt.batch_size,
            shuffle=not opt.serial_batches,
            num_workers=int(opt.num_threads))

    def load_data(self):
        return self

    def __len__(self):
        return min(len(self.dataset), self.opt.max_dataset_size)

    def __iter__(self):
        for i, data in enumerate(self.dataloader):
            if i * self.opt.batch_size >= self.opt.max_dataset_size:
                break
            yield data
