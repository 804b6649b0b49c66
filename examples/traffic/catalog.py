"""What the simulated shop sells and where its visitors come from and land: products,
pages, referrers, newsletter subjects."""
from __future__ import annotations

from dataclasses import dataclass
from random import Random

from examples.traffic.config import MEMBERSHIP_SKU

# category -> (sku prefix, product lines, (product type, lowest price, highest price) ...)
CATALOG_SPEC: dict[str, tuple[str, tuple[str, ...], tuple[tuple[str, int, int], ...]]] = {
    "hair": ("HAIR", ("Argan Repair", "Volume Boost", "Curl Define", "Scalp Detox", "Colour Protect",
                      "Silk Smooth"),
             (("Shampoo", 8, 28), ("Conditioner", 9, 30), ("Hair Mask", 14, 42), ("Hair Oil", 16, 48),
              ("Leave-In Spray", 12, 32), ("Dry Shampoo", 7, 22))),
    "skin": ("SKIN", ("Hydra", "Vitamin C", "Retinol", "Ceramide", "Green Tea", "Hyaluronic"),
             (("Serum", 24, 95), ("Day Cream", 19, 75), ("Night Cream", 22, 85), ("Cleanser", 9, 32),
              ("Toner", 10, 35), ("Eye Cream", 21, 70))),
    "makeup": ("MAKE", ("Velvet", "Nude", "Glow", "Matte", "Luminous"),
               (("Foundation", 16, 52), ("Mascara", 9, 32), ("Lipstick", 8, 36), ("Concealer", 10, 34),
                ("Blush", 9, 30), ("Eyeshadow Palette", 19, 65))),
    "fragrance": ("FRAG", ("Noir", "Fleur", "Citrus", "Amber", "Ocean"),
                  (("Eau de Parfum 50 ml", 55, 165), ("Eau de Toilette 100 ml", 39, 120),
                   ("Body Mist", 14, 35))),
    "tools": ("TOOL", ("Pro", "Ionic", "Travel", "Ceramic"),
              (("Hair Dryer", 59, 329), ("Straightener", 45, 249), ("Curling Wand", 39, 189),
               ("Paddle Brush", 12, 39), ("Makeup Brush Set", 19, 89))),
}


@dataclass(frozen=True, slots=True)
class Product:
    sku: str
    category: str
    cents: int
    view: dict[str, object]  # properties of product_viewed, shared (never mutated)
    url: str


def build_catalog(rng: Random) -> dict[str, list[Product]]:
    catalog: dict[str, list[Product]] = {}
    for category, (prefix, lines, types) in CATALOG_SPEC.items():
        products: list[Product] = []
        for line in lines:
            for kind, low, high in types:
                sku = f"{prefix}-{len(products) + 1:04d}"
                cents = rng.randint(low, high) * 100 - (1 if rng.random() < 0.8 else 0)
                name = f"{line} {kind}"
                view = {"sku": sku, "category": category, "price": cents / 100, "name": name}
                products.append(Product(sku, category, cents, view, f"/p/{sku.lower()}"))
        catalog[category] = products
    return catalog


MEMBERSHIP = Product(MEMBERSHIP_SKU, "membership", 4900,
                     {"sku": MEMBERSHIP_SKU, "category": "membership", "price": 49.0,
                      "name": "Annual Membership"}, "/membership")

LANDING = ("/", "/", "/", "/sale", "/new", "/bestsellers", "/blog/hair-routine", "/blog/spf-guide",
           "/c/hair", "/c/skin", "/c/makeup", "/c/fragrance", "/c/tools", "/search?q=serum",
           "/search?q=shampoo", "/gift-cards")
REFERRERS = ("https://www.google.com/", "https://www.instagram.com/", "https://www.tiktok.com/",
             "https://www.pinterest.com/", None, None, None)
HOST = "https://shop.example.com"

SUBJECTS = (("New in: summer fragrances", "/new"), ("Your hair routine, upgraded", "/c/hair"),
            ("Members save 15% this week", "/membership"), ("Skin care for winter", "/c/skin"),
            ("Best of makeup", "/c/makeup"), ("Tools the pros use", "/c/tools"),
            ("Last chance: sale ends tonight", "/sale"))
