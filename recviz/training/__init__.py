"""Training: the one epoch loop every iterative model runs through (phases, early stopping,
cancellation, reports), the optimisers and the batch loop of gradient-trained models."""
