"""Statistics of music: any set of state matrices S (T, 78, 2), corpus or generated.

A note event starts where a note plays and is struck, or plays without having played the step
before (generation can start a note without striking it); it lasts while the note plays and is
not struck again. Pitches are MIDI numbers (24 + note index).
"""
import numpy as np

from .common import LOWEST_PITCH, N_NOTES

MAX_DURATION_BIN = 32  # durations of 32 steps and more share the last histogram bin


def note_durations(S):
    """Lengths in steps of every note event of S (T, 78, 2), note by note, in time order."""
    play = np.asarray(S)[..., 0].astype(bool)  # (T, 78)
    struck = np.asarray(S)[..., 1].astype(bool) & play
    before = np.vstack([np.zeros((1, play.shape[1]), bool), play[:-1]])  # (T, 78)
    onset = play & (struck | ~before)  # (T, 78)
    durations = []
    for n in range(play.shape[1]):
        starts = np.flatnonzero(onset[:, n])
        for k, t in enumerate(starts):
            end = starts[k + 1] if k + 1 < len(starts) else len(play)
            stops = np.flatnonzero(~play[t:end, n])
            durations.append(int(stops[0]) if len(stops) else int(end - t))
    return durations


def _counts(S):
    S = np.asarray(S)
    play = S[..., 0].astype(bool)  # (T, 78)
    struck = S[..., 1].astype(bool) & play
    sounding = play.sum(axis=0)  # (78,) steps each note sounds
    return {"steps": int(len(S)), "sounding": int(play.sum()), "struck": int(struck.sum()),
            "silent_steps": int((play.sum(axis=1) == 0).sum()), "per_note": sounding,
            "durations": note_durations(S)}


def _summary(c):
    steps, per_note, durations = c["steps"], c["per_note"], c["durations"]
    used = np.flatnonzero(per_note)
    pc = np.bincount(np.arange(N_NOTES) % 12, weights=per_note, minlength=12)
    hist = np.bincount(np.minimum(np.asarray(durations, dtype=int), MAX_DURATION_BIN),
                       minlength=MAX_DURATION_BIN + 1)[1:]
    return {
        "steps": steps,
        "notes_per_step": c["sounding"] / steps if steps else 0.0,
        "articulations_per_step": c["struck"] / steps if steps else 0.0,
        "lowest_pitch": int(LOWEST_PITCH + used[0]) if len(used) else None,
        "highest_pitch": int(LOWEST_PITCH + used[-1]) if len(used) else None,
        "pitch_class_histogram": (pc / pc.sum()).tolist() if pc.sum() else [0.0] * 12,
        "note_events": len(durations),
        "mean_duration": float(np.mean(durations)) if durations else 0.0,
        "duration_histogram": hist.astype(int).tolist(),  # steps 1, 2, ..., 32+
        "silent_fraction": c["silent_steps"] / steps if steps else 0.0,
    }


def piece_stats(S):
    """JSON-able statistics of one piece (T, 78, 2)."""
    return _summary(_counts(S))


def corpus_stats(pieces):
    """The same statistics over many pieces (pooled: every step and note event counts once)."""
    pieces = list(pieces.values()) if isinstance(pieces, dict) else list(pieces)
    parts = [_counts(S) for S in pieces]
    total = {"steps": sum(p["steps"] for p in parts), "sounding": sum(p["sounding"] for p in parts),
             "struck": sum(p["struck"] for p in parts), "silent_steps": sum(p["silent_steps"] for p in parts),
             "per_note": sum((p["per_note"] for p in parts), np.zeros(N_NOTES, int)),
             "durations": [d for p in parts for d in p["durations"]]}
    return {**_summary(total), "pieces": len(parts)}
