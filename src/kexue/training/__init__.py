"""Training toolkit: AdaFactor, exact gradient accumulation, FGM / gradient penalty, EMA,
optimizer and scheduler factories, and the Trainer builder. Any LightningModule opts in by config."""
