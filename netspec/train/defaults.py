"""The settings of the practice checks (netspec/train/practice.py), each with its source, and the sweep's
samplers (netspec/train/sweep.py). Torch-free, so that the command line shows them in its help without
importing torch."""

# LR range test (Smith, "Cyclical learning rates", 2017; the fastai/torch-lr-finder procedure)
START_LR = 1e-7  # the first lr: too small to change anything
END_LR = 10.0  # the last: far above any lr that trains
LR_STEPS = 300  # optimizer steps: 37.5 per decade of lr, the lr × 1.064 after each
BETA = 0.9  # smoothed = the bias-corrected exponential moving average of the losses, weight 0.9 on the past:
# it averages ~10 steps and lags β/(1-β) = 9 steps, a quarter of a decade of lr (fastai's β = 0.98 over 100
# steps lags 49 steps, four decades, which moves the steepest point to lrs that already diverge)
SLOPE_SPAN = 0.5  # decades of lr over which the smoothed loss's slope is measured
DIVERGE = 4.0  # stop once the smoothed loss exceeds 4 × the lowest smoothed loss so far
MIN_FALL = 0.1  # pass only if the smoothed loss fell at least 10 % below its start

# overfitting one batch (Karpathy, "A recipe for training neural networks", 2019; CS231n)
OVERFIT_N = 32  # samples in the batch
OVERFIT_STEPS = 1000  # optimizer steps at most
CLASS_LOSS = 0.05  # classification: a mean cross-entropy of 0.05 gives the true class ≥ e^-0.05 ≈ 95 %
FLOOR_GAP = 0.05  # other losses: within 5 % of the way from the start down to the floor (95 % of it closed)
OVERFIT_MAX_MACS = 10**10  # skip when a step's forward pass (n samples) needs more multiply-accumulates

# gradient check (torch.autograd.gradcheck in float64, fast mode)
GRAD_BATCH = 2  # samples
SYMBOLIC_DIM = 4  # the size given to each symbolic input dim (`T`) unless `dims` says otherwise
GRAD_MAX_PARAMS = 5_000_000  # skip larger networks: float64 copies and per-layer Jacobian products
GRAD_MAX_MACS = 5 * 10**8  # ... or ones needing more multiply-accumulates per sample
EPS, ATOL, RTOL = 1e-6, 1e-5, 1e-3  # torch.autograd.gradcheck's defaults

# hyperparameter search (netspec/train/sweep.py): optuna's GridSampler, RandomSampler and TPESampler
SAMPLERS = ("grid", "random", "tpe")
