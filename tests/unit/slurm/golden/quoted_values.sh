#!/bin/bash
# Written by `python -m launcher sbatch`; resources first (sbatch reads #SBATCH lines up to the first command).
#SBATCH --job-name=it_s___here_
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=1
#SBATCH --output=/work/out/slurm-%j.out
#SBATCH --error=/work/out/slurm-%j.err
#SBATCH --signal=B:USR1@120
#SBATCH --requeue
#SBATCH --open-mode=append

cd '/work/a b'
# exec: srun becomes the batch shell, which SLURM's preemption notice reaches; it passes it on to every process of the step
exec srun --ntasks-per-node=1 python -m launcher '/work/my jobs/it'"'"'s $(here).yaml' --set 'env.X=`id`; $(touch y)' --set data.batch_size=64 -- 'a b' ''"'"'' ''
