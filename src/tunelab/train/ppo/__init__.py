"""Stage ppo: online RL against a reward model, on tunelab's trainer (LLaMA-Factory 0.9.5's PPO, which drives TRL's
PPOTrainer 0.8-0.9; the algorithm is written here on torch)."""
