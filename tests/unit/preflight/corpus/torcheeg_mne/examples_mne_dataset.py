# Corpus case, rewritten after torcheeg/torcheeg examples/examples_mne_dataset.py (issue #16: "Can't pickle
# <function <lambda>>: attribute lookup <lambda> on __main__ failed"): a tutorial script with no __main__
# guard; a lambda in the label_transform Compose; DataLoaders with num_workers=4 handed to trainer.fit.
import logging
import os
import random

import mne
import numpy as np
import torch
from torch.utils.data.dataloader import DataLoader
from torcheeg import transforms
from torcheeg.datasets import MNEDataset
from torcheeg.model_selection import KFold
from torcheeg.models import TSCeption
from torcheeg.trainers import ClassificationTrainer

os.makedirs("./tmp_out/examples_mne_dataset/log", exist_ok=True)
logger = logging.getLogger("Examples of MNEDataset")


def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed(seed)
    torch.backends.cudnn.deterministic = True


seed_everything(42)


class MyClassificationTrainer(ClassificationTrainer):
    def log(self, *args, **kwargs):
        if self.is_main:
            logger.info(*args, **kwargs)


metadata_list = [{"subject": subject_id, "run": run_id} for subject_id in range(1, 22) for run_id in [6, 10, 14]]
epochs_list = []
for metadata in metadata_list:
    physionet_path = mne.datasets.eegbci.load_data(metadata["subject"], metadata["run"], update_path=False)[0]
    raw = mne.io.read_raw_edf(physionet_path, preload=True, stim_channel="auto")
    events, _ = mne.events_from_annotations(raw, event_id=dict(T1=2, T2=3))
    picks = mne.pick_types(raw.info, meg=False, eeg=True, stim=False, eog=False, exclude="bads")
    epochs_list.append(mne.Epochs(raw, events, dict(hands=2, feet=3), tmin=-1.0, tmax=4.0, proj=True, picks=picks))

dataset = MNEDataset(epochs_list=epochs_list,
                     metadata_list=metadata_list,
                     chunk_size=160,
                     overlap=80,
                     io_path="./tmp_out/examples_mne_dataset/physionet",
                     offline_transform=transforms.Compose([transforms.MeanStdNormalize(), transforms.To2d()]),
                     online_transform=transforms.ToTensor(),
                     label_transform=transforms.Compose([
                         transforms.Select("event"),
                         transforms.Lambda(lambda x: x - 2),
                     ]),
                     num_worker=2)

k_fold = KFold(n_splits=5, split_path="./tmp_out/examples_mne_dataset/split")
for i, (train_dataset, val_dataset) in enumerate(k_fold.split(dataset)):
    model = TSCeption(num_electrodes=64, num_classes=2, num_T=15, num_S=15, in_channels=1, hid_channels=32,
                      sampling_rate=160, dropout=0.5)
    trainer = MyClassificationTrainer(model=model, lr=1e-4, weight_decay=1e-4, device_ids=[0])
    train_loader = DataLoader(train_dataset, batch_size=256, shuffle=True, num_workers=4)
    val_loader = DataLoader(val_dataset, batch_size=256, shuffle=False, num_workers=4)
    trainer.fit(train_loader, val_loader, num_epochs=50)
    trainer.test(val_loader)
    trainer.save_state_dict(f"./tmp_out/examples_mne_dataset/weight/{i}.pth")
