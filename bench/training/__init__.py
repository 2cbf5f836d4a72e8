"""Training deep methods: assembling parts into a model, batches, the trainer and its loss
meter, the (graphed) step, device acceleration, resume checkpoints."""
