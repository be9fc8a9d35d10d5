"""Model libraries (configs, nn.Modules, LightningModules, decoding) per technique."""
