"""Whisper checkpoints in CTranslate2's format (faster-whisper's models) as transformers classes.

A CTranslate2 model is a folder: ``model.bin`` (the weights), ``config.json`` (suppress ids, lang
ids, alignment heads) and the vocabulary (``tokenizer.json`` or ``vocabulary.{txt,json}``).
``model.bin`` (binary versions 4 to 6, little-endian) is read here with numpy, without ctranslate2::

    u32 binary version; str spec name ("WhisperSpec"); u32 spec revision; u32 variable count
    per variable: str name; u8 rank; rank x u32 dims; u8 dtype; u32 byte count; the bytes
    u32 alias count; per alias: str alias; str name of the variable it stands for
    str = u16 length (with the NUL) + UTF-8 + NUL; dtype 0 float32, 1 int8, 2 int16, 3 int32,
    4 float16, 5 bfloat16. A quantized ``X`` comes with ``X_scale`` (one per row for int8, one in
    all for int16): the weight is ``X / X_scale``. Options (num_heads, activation, ...) are scalars.

Mapping (CTranslate2 -> transformers, ``gamma``/``beta`` -> ``weight``/``bias``; ``S`` is
``encoder`` or ``decoder``, layer ``i`` is ``S/layer_i`` -> ``model.S.layers.i``):

    encoder/conv1, conv2                       model.encoder.conv1, conv2
    S/position_encodings/encodings             model.S.embed_positions.weight (the encoder's are
                                               Whisper's sinusoids, the decoder's learned)
    S/layer_i/self_attention/linear_0          self_attn.q_proj, k_proj, v_proj (fused by rows)
    S/layer_i/self_attention/linear_1          self_attn.out_proj
    S/layer_i/self_attention/layer_norm        self_attn_layer_norm
    decoder/layer_i/attention/linear_0         encoder_attn.q_proj
    decoder/layer_i/attention/linear_1         encoder_attn.k_proj, v_proj (fused by rows)
    decoder/layer_i/attention/linear_2         encoder_attn.out_proj
    decoder/layer_i/attention/layer_norm       encoder_attn_layer_norm
    S/layer_i/ffn/linear_0, linear_1           fc1, fc2
    S/layer_i/ffn/layer_norm                   final_layer_norm
    S/layer_norm                               model.S.layer_norm
    decoder/embeddings/weight                  model.decoder.embed_tokens.weight and proj_out.weight
                                               (tied: decoder/projection/weight is an alias of it)

Whisper's key projections have no bias: the converter writes zeros in the fused bias, which are
dropped (a key bias would shift every score of a query equally, which softmax ignores).
"""

from __future__ import annotations

import json
import mmap
import re
import struct
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import ModelLoadError

_DTYPES: dict[int, np.dtype] = {
    0: np.dtype("<f4"), 1: np.dtype("i1"), 2: np.dtype("<i2"), 3: np.dtype("<i4"),
    4: np.dtype("<f2"), 5: np.dtype("<u2")}  # 5: bfloat16, widened by hand
# Option scalars of the Whisper spec: name -> the value this mapping needs (None: any).
_OPTIONS = {"encoder/num_heads": None, "decoder/num_heads": None, "decoder/pre_norm": 1,
            "decoder/activation": 3, "decoder/scale_embeddings": 0, "decoder/alibi": 0,
            "decoder/alibi_use_positive_positions": 0, "decoder/scale_alibi": 0,
            "decoder/start_from_zero_embedding": 0, "decoder/alignment_layer": None,
            "decoder/alignment_heads": None, "decoder/embeddings/multiply_by_sqrt_depth": 0}
# Variables the configuration is read from (the rest are checked while mapping).
_REQUIRED = ("encoder/num_heads", "decoder/num_heads", "decoder/embeddings/weight",
             "decoder/projection/weight", "encoder/conv1/weight",
             "encoder/position_encodings/encodings", "decoder/position_encodings/encodings",
             "encoder/layer_0/ffn/linear_0/weight", "decoder/layer_0/ffn/linear_0/weight")


def _missing(path: Path, name: str) -> ModelLoadError:
    return ModelLoadError(f"{path}: variable {name} is missing (a Whisper model in CTranslate2's "
                          "format has it)")


def read_ct2(path: str | Path, shapes_only: bool = False
             ) -> tuple[str, int, dict[str, np.ndarray], dict[str, str]]:
    """Parse a CTranslate2 ``model.bin``: ``(spec name, revision, variables, aliases)``; variables
    are numpy arrays as stored (bfloat16 as float32). ``shapes_only``: the file is mapped, not
    read, and every variable but the scalars is a placeholder of its shape (no memory)."""
    if shapes_only:
        with open(path, "rb") as f:
            data: Any = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    else:
        data = Path(path).read_bytes()
    pos, where = 0, "the header"

    def take(fmt: str) -> tuple:
        nonlocal pos
        value = struct.unpack_from("<" + fmt, data, pos)
        pos += struct.calcsize("<" + fmt)
        return value

    def one(fmt: str) -> int:
        return take(fmt)[0]

    def string() -> str:
        nonlocal pos
        n = one("H")
        if n == 0 or pos + n > len(data):
            raise struct.error("string runs past the end")
        pos += n
        return data[pos - n:pos - 1].decode("utf-8")

    try:
        version = one("I")
        if not 4 <= version <= 6:
            raise ModelLoadError(f"{path}: CTranslate2 binary version {version} is not supported "
                                 "(4 to 6 are)")
        spec, revision = string(), one("I")
        variables: dict[str, np.ndarray] = {}
        for k in range(one("I")):
            where = f"variable #{k}"
            name = string()
            where = f"variable #{k} ({name})"
            shape = take(f"{one('B')}I")
            dtype, nbytes = one("B"), one("I")
            if dtype not in _DTYPES:
                raise ModelLoadError(f"{path}: {where} has unknown dtype id {dtype}")
            if nbytes != int(np.prod(shape)) * _DTYPES[dtype].itemsize or pos + nbytes > len(data):
                raise struct.error(f"{nbytes} bytes do not fit shape {shape}")
            if shapes_only and shape:
                array = np.lib.stride_tricks.as_strided(np.zeros(1, np.float32), shape,
                                                        (0,) * len(shape))
            else:
                array = np.frombuffer(data, _DTYPES[dtype], int(np.prod(shape)), pos).reshape(
                    shape).copy() if shapes_only else np.frombuffer(
                    data, _DTYPES[dtype], int(np.prod(shape)), pos).reshape(shape)
            if dtype == 5 and not (shapes_only and shape):
                array = (array.astype(np.uint32) << 16).view(np.float32)
            variables[name] = array
            pos += nbytes
        where = "the aliases"
        aliases = {string(): string() for _ in range(one("I"))}
    except (struct.error, IndexError, UnicodeDecodeError) as e:
        raise ModelLoadError(f"{path} is truncated or corrupt at byte {pos}, in {where} ({e}); "
                             "copy or convert the model again") from None
    if pos != len(data):
        raise ModelLoadError(f"{path}: {len(data) - pos} stray bytes after the aliases")
    return spec, revision, variables, aliases


def _dequantize(variables: dict[str, np.ndarray], path: Path) -> dict[str, np.ndarray]:
    """float32 weights (``X / X_scale`` for integer ones); scalars stay as they are."""
    out = {}
    for name, a in variables.items():
        if name.endswith("_scale") and name[:-6] in variables:
            continue
        scale = variables.get(name + "_scale")
        if a.ndim and a.dtype.kind == "i":
            if scale is None:
                raise ModelLoadError(f"{path}: integer variable {name} has no {name}_scale")
            s = np.asarray(scale, np.float32)
            a = (a.astype(np.float32).reshape(len(a), -1) / s.reshape(-1, 1)).reshape(a.shape)
        elif scale is not None:
            raise ModelLoadError(f"{path}: {name}_scale given for a {a.dtype} variable")
        out[name] = a.astype(np.float32) if a.ndim else a
    return out


def _state_dict(v: dict[str, np.ndarray], n_enc: int, n_dec: int,
                path: Path) -> dict[str, torch.Tensor]:
    """transformers' state dict from the (dequantized) CTranslate2 variables; pops what it uses."""
    sd: dict[str, torch.Tensor] = {}

    def take(name: str) -> torch.Tensor:
        if name not in v:
            raise _missing(path, name)
        return torch.from_numpy(np.ascontiguousarray(v.pop(name)))

    def linear(hf: str, ct: str) -> None:
        sd[f"{hf}.weight"], sd[f"{hf}.bias"] = take(f"{ct}/weight"), take(f"{ct}/bias")

    def norm(hf: str, ct: str) -> None:
        sd[f"{hf}.weight"], sd[f"{hf}.bias"] = take(f"{ct}/gamma"), take(f"{ct}/beta")

    def fused(hf: str, projections: str, ct: str) -> None:
        weights, biases = (take(f"{ct}/{p}").chunk(len(projections)) for p in ("weight", "bias"))
        for p, w, b in zip(projections, weights, biases, strict=False):
            sd[f"{hf}.{p}_proj.weight"] = w
            if p != "k":
                sd[f"{hf}.{p}_proj.bias"] = b

    for i in (1, 2):
        linear(f"model.encoder.conv{i}", f"encoder/conv{i}")
    for side, layers in (("encoder", n_enc), ("decoder", n_dec)):
        sd[f"model.{side}.embed_positions.weight"] = take(f"{side}/position_encodings/encodings")
        for i in range(layers):
            hf, ct = f"model.{side}.layers.{i}", f"{side}/layer_{i}"
            fused(f"{hf}.self_attn", "qkv", f"{ct}/self_attention/linear_0")
            linear(f"{hf}.self_attn.out_proj", f"{ct}/self_attention/linear_1")
            norm(f"{hf}.self_attn_layer_norm", f"{ct}/self_attention/layer_norm")
            if side == "decoder":
                linear(f"{hf}.encoder_attn.q_proj", f"{ct}/attention/linear_0")
                fused(f"{hf}.encoder_attn", "kv", f"{ct}/attention/linear_1")
                linear(f"{hf}.encoder_attn.out_proj", f"{ct}/attention/linear_2")
                norm(f"{hf}.encoder_attn_layer_norm", f"{ct}/attention/layer_norm")
            linear(f"{hf}.fc1", f"{ct}/ffn/linear_0")
            linear(f"{hf}.fc2", f"{ct}/ffn/linear_1")
            norm(f"{hf}.final_layer_norm", f"{ct}/ffn/layer_norm")
        norm(f"model.{side}.layer_norm", f"{side}/layer_norm")
    sd["model.decoder.embed_tokens.weight"] = sd["proj_out.weight"] = take(
        "decoder/embeddings/weight")
    return sd


def _tokenizer(folder: Path, vocab_size: int) -> Any:
    """The folder's tokenizer: ``tokenizer.json``, else a byte-level one from
    ``vocabulary.json``/``vocabulary.txt`` (it decodes exactly but encodes without BPE merges);
    timestamp tokens are added up to ``vocab_size`` where the file stops at <|notimestamps|>."""
    from transformers import WhisperTokenizerFast

    if (folder / "tokenizer.json").is_file():
        tok = WhisperTokenizerFast(tokenizer_file=str(folder / "tokenizer.json"))
    else:
        from tokenizers import Tokenizer, decoders, models, pre_tokenizers

        if (folder / "vocabulary.json").is_file():
            tokens = json.loads((folder / "vocabulary.json").read_text(encoding="utf-8"))
        elif (folder / "vocabulary.txt").is_file():
            tokens = (folder / "vocabulary.txt").read_text(encoding="utf-8").rstrip("\n")
            tokens = tokens.split("\n")
        else:
            raise ModelLoadError(f"{folder} has no tokenizer.json, vocabulary.json or "
                                 "vocabulary.txt")
        special = [t for t in tokens if re.fullmatch(r"<\|.+\|>", t)]
        backend = Tokenizer(models.BPE({t: i for i, t in enumerate(tokens)}, []))
        backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        backend.decoder = decoders.ByteLevel()
        backend.add_special_tokens(special)
        tok = WhisperTokenizerFast(tokenizer_object=backend)
    timestamps = vocab_size - len(tok)
    if timestamps > 0 and tok.convert_ids_to_tokens(len(tok) - 1) == "<|notimestamps|>":
        tok.add_tokens(["<|%.2f|>" % (i * 0.02) for i in range(timestamps)], special_tokens=True)
    for role in ("pad_token", "bos_token", "eos_token", "unk_token"):  # as OpenAI's tokenizers
        if getattr(tok, role) is None:
            setattr(tok, role, "<|endoftext|>")
    return tok


def _variables(folder: Path, shapes_only: bool = False) -> tuple[dict[str, np.ndarray],
                                                                  dict[str, int]]:
    """A CTranslate2 Whisper folder's variables (aliases resolved, dequantized unless
    ``shapes_only``) and option scalars, checked for what the mapping needs."""
    path = folder / "model.bin"
    for needed in (path, folder / "config.json"):
        if not needed.is_file():
            raise ModelLoadError(f"{folder} is not a CTranslate2 model folder: no {needed.name}")
    spec, _revision, raw, aliases = read_ct2(path, shapes_only)
    if spec != "WhisperSpec":
        raise ModelLoadError(f"{path} holds a {spec}, not a WhisperSpec")
    v = raw if shapes_only else _dequantize(raw, path)
    for alias, target in aliases.items():
        if target not in v:
            raise ModelLoadError(f"{path}: alias {alias} points to no variable ({target})")
        v[alias] = v[target]
    for name in _REQUIRED:
        if name not in v:
            raise _missing(path, name)
    options = {}
    for name, need in _OPTIONS.items():
        if name in v:
            options[name] = int(v.pop(name))
            if need is not None and options[name] != need:
                raise ModelLoadError(f"{path}: {name} = {options[name]}, but Whisper needs {need}")
    return v, options


def _architecture(v: dict[str, np.ndarray], options: dict[str, int]) -> dict[str, int]:
    """``WhisperConfig`` sizes from the variables' shapes and the option scalars."""
    n_enc, n_dec = (1 + max((int(m[1]) for m in (re.match(rf"{side}/layer_(\d+)/", n) for n in v)
                             if m), default=-1) for side in ("encoder", "decoder"))
    vocab, d_model = v["decoder/embeddings/weight"].shape
    return dict(vocab_size=vocab, num_mel_bins=v["encoder/conv1/weight"].shape[1],
                d_model=d_model, encoder_layers=n_enc, decoder_layers=n_dec,
                encoder_attention_heads=options["encoder/num_heads"],
                decoder_attention_heads=options["decoder/num_heads"],
                encoder_ffn_dim=v["encoder/layer_0/ffn/linear_0/weight"].shape[0],
                decoder_ffn_dim=v["decoder/layer_0/ffn/linear_0/weight"].shape[0],
                max_source_positions=v["encoder/position_encodings/encodings"].shape[0],
                max_target_positions=v["decoder/position_encodings/encodings"].shape[0])


def ct2_whisper_config(folder: str | Path) -> Any:
    """The ``WhisperConfig`` of a CTranslate2 Whisper folder, from ``model.bin``'s header alone
    (its weights are mapped, not read): for listing layers and sizes without loading."""
    from transformers import WhisperConfig

    shape = _architecture(*_variables(Path(folder), shapes_only=True))
    last = shape["vocab_size"] - 1  # token ids are the tokenizer's (not read): any valid one
    return WhisperConfig(**shape, activation_function="gelu", scale_embedding=False,
                         pad_token_id=last, bos_token_id=last, eos_token_id=last,
                         decoder_start_token_id=last)


def load_ct2_whisper(folder: str | Path, dtype: torch.dtype = torch.float32,
                     english_only: bool | None = None) -> tuple[Any, Any, Any]:
    """``(WhisperForConditionalGeneration, tokenizer, WhisperFeatureExtractor)`` from a
    CTranslate2 Whisper folder, ready for ``model.generate(features, language="en",
    task="transcribe")`` offline; an English-only model (``english_only``, else a 51864-token
    vocabulary or a folder name ending in ``.en``) generates as released,
    ``<|startoftranscript|><|notimestamps|>``, with ``model.generate(features)`` (transformers
    refuses a language or task for it). Raises :class:`ModelLoadError` naming any missing,
    unknown or unreadable variable."""
    from transformers import (
        GenerationConfig,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
    )

    folder = Path(folder)
    v, options = _variables(folder)
    path = folder / "model.bin"
    if not np.array_equal(v.pop("decoder/projection/weight"), v["decoder/embeddings/weight"]):
        raise ModelLoadError(f"{path}: decoder/projection/weight must be tied to (an alias of) "
                             "decoder/embeddings/weight, as in Whisper")
    shape = _architecture(v, options)
    vocab, n_target = shape["vocab_size"], shape["max_target_positions"]
    sd = _state_dict(v, shape["encoder_layers"], shape["decoder_layers"], path)
    if v:
        raise ModelLoadError(f"{path}: unknown variable(s) {', '.join(sorted(v))}; not part of "
                             "a Whisper model this loader knows")

    ct2 = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    tok = _tokenizer(folder, vocab)
    ids = {}
    for key, token in (("eos", "<|endoftext|>"), ("start", "<|startoftranscript|>"),
                       ("transcribe", "<|transcribe|>"), ("translate", "<|translate|>"),
                       ("no_timestamps", "<|notimestamps|>"), ("prev", "<|startofprev|>")):
        ids[key] = tok.convert_tokens_to_ids(token)  # unknown: the unknown id, <|endoftext|>
        if not isinstance(ids[key], int) or (key != "eos" and ids[key] == tok.unk_token_id):
            raise ModelLoadError(f"{folder}: the tokenizer has no {token}")
    lang_ids = [int(i) for i in ct2.get("lang_ids") or []]
    special = dict(pad_token_id=ids["eos"], bos_token_id=ids["eos"], eos_token_id=ids["eos"],
                   decoder_start_token_id=ids["start"],
                   suppress_tokens=list(ct2.get("suppress_ids") or []),
                   begin_suppress_tokens=list(ct2.get("suppress_ids_begin") or []))
    config = WhisperConfig(**shape, activation_function="gelu", scale_embedding=False,
                           tie_word_embeddings=True, **special)
    config.forced_decoder_ids = None
    model = WhisperForConditionalGeneration(config)
    expected = model.state_dict()
    wrong = [f"{k} {tuple(sd[k].shape)} vs {tuple(t.shape)}" for k, t in expected.items()
             if k in sd and sd[k].shape != t.shape]
    if wrong or set(sd) != set(expected):
        raise ModelLoadError(f"{path}: weights do not fit Whisper: "
                             f"{', '.join(wrong or sorted(set(sd) ^ set(expected)))}")
    model.load_state_dict(sd)
    if english_only is None:  # as CTranslate2 tells (51864 tokens), or by the folder's name
        english_only = vocab == 51864 or folder.resolve().name.endswith(".en")
    languages = {} if english_only or not lang_ids else {  # no language detection either
        "lang_to_id": {tok.convert_ids_to_tokens(i): i for i in lang_ids}}
    model.generation_config = GenerationConfig(
        **special, max_length=n_target, forced_decoder_ids=None,
        is_multilingual=not english_only and bool(lang_ids), **languages,
        task_to_id={"transcribe": ids["transcribe"], "translate": ids["translate"]},
        no_timestamps_token_id=ids["no_timestamps"], prev_sot_token_id=ids["prev"],
        max_initial_timestamp_index=50,
        alignment_heads=[list(h) for h in ct2.get("alignment_heads") or []])
    model = model.to(dtype)  # type: ignore[arg-type]  # transformers types .to's wrapper wrongly
    return model.eval(), tok, WhisperFeatureExtractor(feature_size=shape["num_mel_bins"])
