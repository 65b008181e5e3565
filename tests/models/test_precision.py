from models.precision import choose_precision, cpu_has_bf16, resolve_precision


def test_cpu_flags_decide():
    assert cpu_has_bf16(frozenset({"avx512f", "avx512_bf16"}))
    assert cpu_has_bf16(frozenset({"amx_bf16", "amx_tile"}))
    assert not cpu_has_bf16(frozenset({"avx2", "avx512f"}))
    assert choose_precision([], frozenset({"avx512_bf16"})) == "mixed_bfloat16"
    assert choose_precision([], frozenset({"avx2"})) == "float32"


def test_gpus_decide():
    assert choose_precision([(9, 0)], frozenset()) == "mixed_bfloat16"
    assert choose_precision([(7, 5)], frozenset({"avx512_bf16"})) == "mixed_float16"
    assert choose_precision([(6, 1)], frozenset({"avx512_bf16"})) == "float32"


def test_resolve():
    assert resolve_precision("float32") == "float32"
    assert resolve_precision("auto") in ("float32", "mixed_bfloat16", "mixed_float16")
