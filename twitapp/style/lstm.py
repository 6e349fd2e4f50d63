"""An optional neural engine for "write like them": a character-level LSTM, trained with early stopping.

Needs PyTorch (``pip install torch``; not a default dependency). The architecture starts from the classic
recipe for writing like one account: characters in, two LSTM layers of 128 units with 20% dropout,
RMSprop; where that recipe trains for a fixed number of epochs (and overfits an account's few thousand
posts), this one halves its step whenever the held-out posts' loss stops falling, going on from the best
weights, stops after three such epochs, and keeps the best epoch.

Each post is a sequence of its own: a start symbol, its characters, an end symbol, so the model learns how
posts open and where they stop, and its bits per character are comparable with the Kneser-Ney engine's.
Drawn posts keep to the same length limit, cut the same way, and keep to real words the same way (sampling.py).
Weights are saved as NumPy arrays (``numpy.savez``), never as a pickle.
"""

from __future__ import annotations

import functools
import importlib.util
import io
from collections.abc import Callable, Sequence

import numpy as np

from twitapp.errors import UserError
from twitapp.style.sampling import write
from twitapp.style.words import Lexicon

PAD, BOS, EOS, UNK = 0, 1, 2, 3
HIDDEN, LAYERS, DROPOUT, EMBEDDING = 128, 2, 0.2, 48
BATCH = 32
LEARNING_RATE = 5e-3
MAX_EPOCHS = 40
PATIENCE = 3


class NeuralUnavailable(UserError, ValueError):
    """PyTorch is not installed."""


@functools.cache
def available() -> bool:
    """Whether PyTorch is installed (asked once per process: pages ask on every view).

    Found without importing it: importing PyTorch takes seconds, which the first account page of
    every server process used to wait for. A training run imports it for real (``_torch``).
    """
    return importlib.util.find_spec("torch") is not None


def _torch():
    try:
        import torch
    except ImportError:
        raise NeuralUnavailable("The LSTM engine needs PyTorch, which is not installed (pip install torch).") from None
    return torch


def _network(vocabulary: int):
    torch = _torch()

    class CharLSTM(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embed = torch.nn.Embedding(vocabulary, EMBEDDING, padding_idx=PAD)
            self.lstm = torch.nn.LSTM(EMBEDDING, HIDDEN, num_layers=LAYERS, dropout=DROPOUT, batch_first=True)
            self.drop = torch.nn.Dropout(DROPOUT)
            self.out = torch.nn.Linear(HIDDEN, vocabulary)

        def forward(self, x, state=None):
            h, state = self.lstm(self.embed(x), state)
            return self.out(self.drop(h)), state

    return CharLSTM()


class LSTMModel:
    """A trained network with its alphabet; scores posts and draws new ones."""

    def __init__(self, alphabet: str, network) -> None:
        self.alphabet = alphabet
        self.index = {c: i + 4 for i, c in enumerate(alphabet)}
        self.network = network
        self.order = 0  # a recurrent model has no fixed order; kept for a shared interface
        self.scale = 1.0

    @property
    def vocabulary(self) -> int:
        return len(self.alphabet) + 4

    def _encode(self, post: str) -> list[int]:
        return [self.index.get(c, UNK) for c in post]

    def _batches(self, posts: Sequence[str], shuffle: np.random.Generator | None = None):
        torch = _torch()
        encoded = [self._encode(p) for p in posts]
        order = np.argsort([len(e) for e in encoded], kind="stable")  # similar lengths, little padding
        batches = [order[i : i + BATCH] for i in range(0, len(order), BATCH)]
        if shuffle is not None:
            shuffle.shuffle(batches)
        for batch in batches:
            width = max(len(encoded[i]) for i in batch) + 1
            inputs = torch.full((len(batch), width), PAD, dtype=torch.long)
            targets = torch.full((len(batch), width), PAD, dtype=torch.long)
            for row, i in enumerate(batch):
                ids = encoded[i]
                inputs[row, : len(ids) + 1] = torch.tensor([BOS, *ids])
                targets[row, : len(ids) + 1] = torch.tensor([*ids, EOS])
            yield inputs, targets

    def _loss(self, inputs, targets):
        torch = _torch()
        logits, _ = self.network(inputs)
        return torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=PAD, reduction="sum"
        )

    def bits_per_char(self, posts: Sequence[str]) -> float:
        torch = _torch()
        self.network.eval()
        total, symbols = 0.0, 0
        with torch.no_grad():
            for inputs, targets in self._batches(posts):
                total += float(self._loss(inputs, targets))
                symbols += int((targets != PAD).sum())
        return total / max(symbols, 1) / float(np.log(2))

    @classmethod
    def train(
        cls,
        posts: Sequence[str],
        held_out: Sequence[str],
        progress: Callable[[int, int, str], None] | None = None,
        seed: int = 0,
        max_epochs: int | None = None,
    ) -> tuple[LSTMModel, dict]:
        """Fit on ``posts``, stopping when ``held_out`` stops improving; returns the best epoch's model.

        ``max_epochs``: MAX_EPOCHS unless given (read when called, so a setting changed later counts)."""
        max_epochs = max_epochs or MAX_EPOCHS
        torch = _torch()
        torch.manual_seed(seed)
        alphabet = "".join(sorted({c for post in [*posts, *held_out] for c in post}))
        model = cls(alphabet, _network(len(alphabet) + 4))
        optimiser = torch.optim.RMSprop(model.network.parameters(), lr=LEARNING_RATE)
        rng = np.random.default_rng(seed)
        best, best_state, best_epoch, history, stale = float("inf"), None, 0, [], 0
        for epoch in range(1, max_epochs + 1):
            model.network.train()
            for inputs, targets in model._batches(posts, shuffle=rng):
                optimiser.zero_grad()
                loss = model._loss(inputs, targets) / int((targets != PAD).sum())
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.network.parameters(), 5.0)
                optimiser.step()
            bits = model.bits_per_char(held_out)
            history.append(round(bits, 4))
            if progress is not None:
                progress(epoch, max_epochs, f"Epoch {epoch}: {bits:.3f} bits per character on held-out posts.")
            if bits < best - 1e-4:  # the weights kept, and the epoch reported, are the same epoch's
                best, best_epoch, stale = bits, epoch, 0
                best_state = {k: v.detach().clone() for k, v in model.network.state_dict().items()}
            else:  # no better: go on from the best weights with half the step, PATIENCE times at most
                stale += 1
                if stale >= PATIENCE:
                    break
                model.network.load_state_dict(best_state)
                for group in optimiser.param_groups:
                    group["lr"] /= 2
        model.network.load_state_dict(best_state)
        return model, {"epochs": len(history), "best_epoch": best_epoch, "held_out_bits": history}

    def sample(
        self, rng: np.random.Generator, temperature: float = 1.0, opening: str = "", words: Lexicon | None = None
    ) -> str:
        """One post, drawn by ``sampling.write`` (kept to ``words`` when given)."""
        torch = _torch()
        self.network.eval()
        state = None

        def following(symbol: int | None) -> np.ndarray:
            nonlocal state
            given = [BOS, *self._encode(opening)] if symbol is None else [symbol]
            logits, state = self.network(torch.tensor([given]), state)
            scores = logits[0, -1].double() / temperature
            scores[[PAD, BOS, UNK]] = -float("inf")
            p = torch.softmax(scores, 0).numpy()
            return p / p.sum()

        with torch.no_grad():
            return write(rng, self.alphabet, 4, opening, words, following)

    def to_bytes(self) -> bytes:
        arrays = {f"w_{k}": v.numpy() for k, v in self.network.state_dict().items()}
        arrays["alphabet"] = np.array([ord(c) for c in self.alphabet], dtype=np.int32)
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **arrays)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, blob: bytes) -> LSTMModel:
        torch = _torch()
        with np.load(io.BytesIO(blob), allow_pickle=False) as data:
            alphabet = "".join(chr(int(c)) for c in data["alphabet"])
            state = {k[2:]: torch.from_numpy(data[k].copy()) for k in data.files if k.startswith("w_")}
        model = cls(alphabet, _network(len(alphabet) + 4))
        model.network.load_state_dict(state)
        model.network.eval()
        return model
