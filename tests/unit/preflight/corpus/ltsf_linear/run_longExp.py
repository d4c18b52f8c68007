# Corpus case, rewritten after cure-lab/LTSF-Linear run_longExp.py (issue #38: the bootstrapping
# RuntimeError on Windows): a module-level script; exp.train() (exp/exp_main.py) builds and iterates
# DataLoaders with --num_workers (default 10) through data_provider.
import argparse
import random

import numpy as np
import torch
from exp.exp_main import Exp_Main

fix_seed = 2021
random.seed(fix_seed)
torch.manual_seed(fix_seed)
np.random.seed(fix_seed)

parser = argparse.ArgumentParser(description="Autoformer & Transformer family for Time Series Forecasting")
parser.add_argument("--is_training", type=int, required=True, default=1)
parser.add_argument("--model_id", type=str, required=True, default="test")
parser.add_argument("--model", type=str, required=True, default="Autoformer")
parser.add_argument("--data", type=str, required=True, default="ETTm1")
parser.add_argument("--root_path", type=str, default="./data/ETT/")
parser.add_argument("--data_path", type=str, default="ETTh1.csv")
parser.add_argument("--seq_len", type=int, default=96)
parser.add_argument("--pred_len", type=int, default=96)
parser.add_argument("--num_workers", type=int, default=10, help="data loader num workers")
parser.add_argument("--itr", type=int, default=2)
parser.add_argument("--train_epochs", type=int, default=10)
parser.add_argument("--batch_size", type=int, default=32)
parser.add_argument("--learning_rate", type=float, default=0.0001)
parser.add_argument("--use_gpu", type=bool, default=True)
parser.add_argument("--gpu", type=int, default=0)
args = parser.parse_args()
args.use_gpu = True if torch.cuda.is_available() and args.use_gpu else False

Exp = Exp_Main

if args.is_training:
    for ii in range(args.itr):
        setting = f"{args.model_id}_{args.model}_{args.data}_sl{args.seq_len}_pl{args.pred_len}_{ii}"
        exp = Exp(args)
        print(f">>>>>>>start training : {setting}>>>>>>>>>>>>>>>>>>>>>>>>>>")
        exp.train(setting)
        print(f">>>>>>>testing : {setting}<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<<")
        exp.test(setting)
        torch.cuda.empty_cache()
else:
    setting = f"{args.model_id}_{args.model}_{args.data}_sl{args.seq_len}_pl{args.pred_len}_0"
    exp = Exp(args)
    exp.test(setting, test=1)
    torch.cuda.empty_cache()
