"""The numpy backend: the reference model composed from the twins in reference.py.

The backend interface (backends/__init__.py), as CudaBackend has it: parameters and Adadelta
state in flat buffers (params.FlatState) with a view per parameter; loss, activations,
gradients, the optimiser step, dropout masks and composition. forward / backward are the
reference's composition of the twins (the finite-difference tests call them). Arithmetic in the model's dtype (float32, or float64 for
gradient checks). Dropout masks come from the model's generator (rng.random), one mask row per
sequence row, so a resumed run draws what an uninterrupted one would.

Generation (compose_host) advances K pieces one step at a time: the time stack in NumPy one piece
at a time (every GEMM has exactly 78 rows, so a piece comes out the same alone or in a batch),
then pitch_sweep (numba) for the 78 dependent note decisions of every piece.
"""
import numpy as np

from ..common import N_FEATURES, N_NOTES, ComposeTrace
from ..params import FlatState, host_weights, mask_shapes
from . import reference as ref


class NumpyBackend:
    name = "numpy"

    def __init__(self, config, params, opt):
        """config: Model.config; params {name: array}, opt {"Eg/name": array}: host arrays."""
        self.config = config
        self.act = config["cell_activation"]
        self.dtype = np.dtype(config["dtype"])
        self.state = FlatState(np, params, opt, self.dtype)
        self.params, self.grads, self.opt = self.state.params, self.state.grads, self.state.opt

    # ------------------------------------------------------------------ training

    def forward(self, batch, masks=None, positions=None):
        """The whole forward pass of a (B, T, 78, 2) batch with (B, T) bar positions (None: each
        step's index in its segment): (loss, what backward needs)."""
        p, act = self.params, self.act
        B, T = batch.shape[:2]
        positions = ref.segment_positions(B, T) if positions is None else positions  # (B, T)
        x = ref.note_inputs(batch, positions, self.dtype)  # (T-1, B*78, 80)
        caches = {}
        for k in range(len(self.config["t_layer_sizes"])):
            h, caches[f"time.{k}"] = ref.lstm_layer_forward(x, p[f"time.{k}.W"], p[f"time.{k}.b"], act)
            x = h * masks[f"time.{k}"] if masks else h  # (T-1, B*78, H)
        x = ref.pitch_inputs(x, batch)  # (78, B*(T-1), Ht+2)
        for k in range(len(self.config["p_layer_sizes"])):
            h, caches[f"pitch.{k}"] = ref.lstm_layer_forward(x, p[f"pitch.{k}.W"], p[f"pitch.{k}.b"], act)
            x = h * masks[f"pitch.{k}"] if masks else h  # (78, B*(T-1), H)
        y = ref.pitch_targets(batch, self.dtype)  # (78, B*(T-1), 2)
        P, loss = ref.output_loss_forward(x, p["out.W"], p["out.b"], y)
        return loss, (caches, x, P, y, B)

    def backward(self, saved, masks=None):
        """{name: gradient} (new arrays) from forward's saved state."""
        caches, x, P, y, B = saved
        p, act = self.params, self.act
        grads = {}
        dlogits = ref.output_loss_backward(P, y)  # (78, R, 2)
        Hp = x.shape[-1]
        grads["out.W"] = dlogits.reshape(-1, 2).T @ x.reshape(-1, Hp)
        grads["out.b"] = dlogits.reshape(-1, 2).sum(axis=0)
        dx = dlogits @ p["out.W"]  # (78, R, Hp)
        for k in reversed(range(len(self.config["p_layer_sizes"]))):
            dh = dx * masks[f"pitch.{k}"] if masks else dx
            dx, grads[f"pitch.{k}.W"], grads[f"pitch.{k}.b"] = ref.lstm_layer_backward(
                dh, caches[f"pitch.{k}"], p[f"pitch.{k}.W"], act)
        dx = ref.pitch_to_time(dx, B, self.config["t_layer_sizes"][-1])  # (T-1, B*78, Ht)
        for k in reversed(range(len(self.config["t_layer_sizes"]))):
            dh = dx * masks[f"time.{k}"] if masks else dx
            dx, grads[f"time.{k}.W"], grads[f"time.{k}.b"] = ref.lstm_layer_backward(
                dh, caches[f"time.{k}"], p[f"time.{k}.W"], act)
        return {name: grads[name].astype(self.dtype) for name in self.params}

    def loss(self, batch, masks=None, positions=None):
        return self.forward(batch, masks, positions)[0]

    def activations(self, batch, positions=None):
        """(loss, {"time.k" / "pitch.k": (B, T-1, 78, H) hidden outputs, "probabilities":
        (B, T-1, 78, 2)}) of a batch without dropout."""
        loss, (caches, _, P, _, B) = self.forward(batch, positions=positions)
        outputs = {name: cache[1] for name, cache in caches.items()}  # cache[1]: every step's h
        return loss, ref.activations_by_piece(outputs, P, B)

    def gradients(self, batch, masks, positions=None):
        """(loss, {name: gradient}): new arrays, not the optimiser's buffer."""
        loss, saved = self.forward(batch, masks, positions)
        return loss, self.backward(saved, masks)

    def train_step(self, batch, masks, reduce=None, positions=None):
        self.state.adopt()
        loss, grads = self.gradients(batch, masks, positions)
        for name, g in grads.items():
            self.grads[name][...] = g
        if reduce is not None:
            loss = reduce(self.state.flat["grad"], loss)
        self.adadelta()
        return loss

    def gradient_sq_norms(self):
        """(n_seg,) float64: the squared norm of each clipping segment of the gradient buffer
        (what adadelta clips by; the buffer itself is never clipped in place)."""
        return ref.segment_sq_norms(self.state.flat["grad"], self.state.segment_offsets)

    def adadelta(self):
        """Clip per segment and update every parameter from self.grads (adadelta.cu's twins)."""
        flat, offsets = self.state.flat, self.state.segment_offsets
        sq = ref.segment_sq_norms(flat["grad"], offsets)
        ref.adadelta_update(flat["param"], flat["grad"], flat["Eg"], flat["Ex"], offsets, sq)

    def dropout_masks(self, B, T, p, rng):
        """{layer: (rows, H)} inverted-dropout masks drawn from rng (rng.random, layer by layer)."""
        return {name: ref.dropout_mask(rng, rows, H, p, self.dtype)
                for name, (rows, H) in mask_shapes(self.config, B, T).items()}

    def parameters_finite(self):
        self.state.adopt()
        return bool(np.isfinite(self.state.flat["param"]).all())

    # ------------------------------------------------------------------ generation

    def compose(self, seeds, steps, conservativity, adaptive, uniforms, positions):
        """seeds (K, 78, 2) uint8, uniforms (K, steps, 78, 2) float64, positions (K, steps) int32
        -> ComposeTrace."""
        weights = host_weights(self.params, self.act)
        return compose_host(weights, seeds, steps, conservativity, adaptive, uniforms, positions)


def compose_host(weights, seeds, steps, conservativity, adaptive, uniforms, positions):
    """Generation on the CPU from params.HostWeights: seeds (K, 78, 2) uint8, uniforms
    (K, steps, 78, 2) float64, positions (K, steps) int32 (the bar position of each step's input
    state) -> ComposeTrace (MODEL_SPEC 7)."""
    n_pieces = seeds.shape[0]
    dtype = weights.dtype
    activation = "tanh" if weights.tanh_cell else "identity"
    states = np.zeros((n_pieces, steps + 1, N_NOTES, 2), dtype=np.uint8)  # (K, steps+1, 78, 2)
    states[:, 0] = seeds
    probabilities = np.zeros((n_pieces, steps, N_NOTES, 2), dtype=dtype)  # (K, steps, 78, 2)
    cons_used = np.zeros((n_pieces, steps + 1), dtype=np.float64)  # (K, steps+1)
    cons = np.full(n_pieces, conservativity, dtype=np.float64)  # (K,)
    # time-stack state per layer: h, c (K, 78, H)
    hidden = [np.zeros((n_pieces, N_NOTES, W_h.shape[1]), dtype=dtype) for _, W_h, _ in weights.time_layers]
    cells = [np.zeros_like(h) for h in hidden]
    pitch0_in = np.zeros((n_pieces, N_NOTES, weights.pitch0_b.shape[0]), dtype=dtype)  # (K, 78, 4H0)
    one = dtype.type(1)  # 1 in the model's dtype, so numba keeps float32 arithmetic float32
    for t in range(steps):
        features = ref.note_inputs_at(states[:, t], positions[:, t], dtype).reshape(n_pieces, N_NOTES, N_FEATURES)  # (K, 78, 80)
        for k in range(n_pieces):  # one piece at a time: every GEMM has 78 rows
            x = features[k]  # (78, 80)
            for layer, (W_x, W_h, b) in enumerate(weights.time_layers):
                xproj = x @ W_x.T + b  # (78, 4H)
                h, c, _ = ref.lstm_step_forward(xproj, hidden[layer][k], cells[layer][k], W_h, activation)
                hidden[layer][k], cells[layer][k] = h, c  # (78, H)
                x = h
            pitch0_in[k] = x @ weights.pitch0_time_wT + weights.pitch0_b  # (78, 4H0)
        cons_used[:, t] = cons
        ref.pitch_sweep(pitch0_in, weights.pitch0_prev_wT, weights.pitch_sizes, weights.pitch_wxT,
                    weights.pitch_wx_at, weights.pitch_whT, weights.pitch_wh_at, weights.pitch_b,
                    weights.pitch_b_at, weights.out_wT, weights.out_b, np.ascontiguousarray(uniforms[:, t]),
                    cons, states[:, t + 1], probabilities[:, t], weights.tanh_cell, adaptive, one)
    cons_used[:, steps] = cons
    return ComposeTrace(states=states, probabilities=probabilities, conservativity=cons_used)
