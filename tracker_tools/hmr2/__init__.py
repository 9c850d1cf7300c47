"""Our PyTorch implementation of HMR2 (4D-Humans) and the SMPL body model, for export only."""
