"""recbole-bet: budgeted embedding tables for RecBole (BET, WSDM 2024).

Install torch first, as the README says (``pip install torch==2.13.0``): a
plain ``torch`` requirement would pull a multi-GB CUDA build here.
"""

from setuptools import find_packages, setup

setup(
    name="recbole-bet",
    version="0.1.0",
    description="Budgeted embedding tables for RecBole: BET (Qu et al., WSDM 2024) and every baseline (ES, MR, PEP, OptEmbed, magnitude pruning, the power rule) under one hard parameter budget",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.9",
    packages=find_packages(include=["recbole_bet", "recbole_bet.*"]) + ["recbole_bet.properties"],
    # properties/ sits at the top of the checkout (RecBole's plugin layout) and is
    # installed inside the package, where recbole_bet.config.properties_dir finds it.
    package_dir={"recbole_bet.properties": "properties"},
    package_data={"recbole_bet.properties": ["*.yaml", "model/*.yaml", "dataset/*.yaml", "method/*.yaml", "method/*/*.yaml"]},
    install_requires=[
        "torch>=2.0",  # the int8 screen of full ranking needs torch._int_mm (2.13 tested); without it, the float path
        "recbole==1.2.1",
        # RecBole 1.2.1 breaks with newer releases of these (see README, "Why the pins"):
        "numpy<2",
        "scipy<1.13",
        "pandas<3",
        "setuptools<81",
        "pyarrow<22",
        "ray==2.6.3",
        "tqdm",
        "matplotlib",
        "networkx>=3.0",  # GraphHash's Louvain clustering (louvain_communities); torch installs it too
    ],
    extras_require={"test": ["pytest", "hypothesis"]},
    entry_points={
        "console_scripts": [
            "recbole-bet=recbole_bet.quick_start:main",
            "recbole-bet-convert=recbole_bet.convert:main",
        ]
    },
)
