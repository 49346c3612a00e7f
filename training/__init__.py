"""The training package: TRL's SFTTrainer with the fast CPU step and its fused kernels, the typed
`train:` config, checkpoint selection and experiment trackers. It knows no method of the study and
no run directory beyond the paths it is given; the study's train stage (cgd/train.py) drives it."""
