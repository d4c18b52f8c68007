# Corpus case, written after the report in Project-MONAI/MONAI issue #2443: CropForegroundd with a
# lambda select_fn inside a Compose made in main(), and a DataLoader with workers.
from monai.data import DataLoader, Dataset
from monai.transforms import AddChanneld, Compose, CropForegroundd, LoadImaged, ToTensord


def main():
    files = [{"image": "img0.nii.gz", "label": "seg0.nii.gz"}, {"image": "img1.nii.gz", "label": "seg1.nii.gz"}]
    transforms = Compose(
        [
            LoadImaged(keys=["image", "label"]),
            AddChanneld(keys=["image", "label"]),
            CropForegroundd(keys=["image", "label"], source_key="image", select_fn=lambda x: x > 0),
            ToTensord(keys=["image", "label"]),
        ]
    )
    train_ds = Dataset(data=files, transform=transforms)
    train_loader = DataLoader(train_ds, batch_size=1, num_workers=2)
    print(next(iter(train_loader)))


if __name__ == "__main__":
    main()
