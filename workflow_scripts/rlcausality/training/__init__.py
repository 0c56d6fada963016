"""SFT and GRPO: LoRA, rewards, launchers, step budgets, checkpoints, manifests."""
