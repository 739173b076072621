"""The CNN (a ResNet-50 variant, thesis §3.2.1 and §2.3.1), its codec, checkpoints and training."""
