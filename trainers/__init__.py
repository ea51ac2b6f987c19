"""Training and evaluation: flag-free library (`train_lib`) and absl entry points."""
