"""Training deep methods: assembling parts into a model, batches, the loop, the (graphed)
step, device acceleration, resume checkpoints."""
