# Corpus case, rewritten after junyanz/pytorch-CycleGAN-and-pix2pix train.py (issue #1197: "Can't pickle
# local object 'get_transform.<locals>.<lambda>'" on Windows with --preprocess none).
import time

from data import create_dataset


class Options:
    """Stands in for options/train_options.py (the flags the data package reads)."""

    dataroot = "./datasets/maps"
    dataset_mode = "unaligned"
    preprocess = "resize_and_crop"
    load_size = 286
    crop_size = 256
    no_flip = False
    batch_size = 1
    serial_batches = False
    num_threads = 4
    max_dataset_size = float("inf")
    n_epochs = 100


if __name__ == "__main__":
    opt = Options()
    dataset = create_dataset(opt)
    print(f"The number of training images = {len(dataset)}")
    total_iters = 0
    for epoch in range(1, opt.n_epochs + 1):
        epoch_start_time = time.time()
        for i, data in enumerate(dataset):
            total_iters += opt.batch_size
        print(f"End of epoch {epoch} \t Time Taken: {time.time() - epoch_start_time:.0f} sec")
