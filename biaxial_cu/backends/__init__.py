"""Backends of biaxial_cu.Model: numpy_backend.NumpyBackend (the reference, NumPy + numba) and
cuda.CudaBackend (CuPy + kernels/). Both are made as Backend(config, params, opt) from host
arrays and have the same interface (tests/test_model.py checks the signatures):

    name                    "numpy" / "cuda"
    params, opt             {name: array}, {"Eg/name" / "Ex/name": array}: views of flat buffers
    loss(batch, masks=None, positions=None) -> float: summed NLL (MODEL_SPEC 4), dropout only
                            with masks; positions (B, T) int32 bar positions of the steps
                            (features' beat inputs), None: each step's index in its segment
    activations(batch, positions=None) -> (loss, {"time.k" / "pitch.k": (B, T-1, 78, H),
                            "probabilities": ...})
    gradients(batch, masks, positions=None) -> (loss, {name: gradient})
    train_step(batch, masks, reduce=None, positions=None) -> loss: gradients, then
                            reduce(flat gradient buffer, loss) -> loss (the data-parallel sum),
                            then adadelta
    adadelta()              one Adadelta step with per-gate clipping from the gradient buffer
    gradient_sq_norms()     -> (n_seg,) float64 host array: each clipping segment's squared norm
    dropout_masks(B, T, p, rng) -> {layer: (rows, H)}, drawn with the model's generator
    compose(seeds, steps, conservativity, adaptive, uniforms, positions) -> common.ComposeTrace;
                            positions (K, steps) int32: the bar position of each step's input
    parameters_finite()     -> bool
"""
