"""recbole-bet: budgeted embedding tables for RecBole (BET, WSDM 2024).

Install torch first, as the README says (``pip install torch==2.13.0``): a
plain ``torch`` requirement would pull a multi-GB CUDA build here.
"""

from setuptools import find_packages, setup

# Short on purpose: the README links docs/ and bench/results/ by relative paths, which do not resolve on a package
# index (and this package names no repository URL to make them absolute).
LONG_DESCRIPTION = """\
# recbole-bet

Budgeted embedding tables for [RecBole](https://recbole.io) 1.2.1. Say "this model may use 10% of a 128-wide
embedding table": recbole-bet finds how wide each user's and each item's embedding should be, guarantees the result
fits that budget to the parameter, trains it with RecBole, and exports a compressed table.

The search is BET (Qu, Chen, Nguyen, Yin, "Budgeted Embedding Table For Recommender Systems", WSDM 2024). Beside it,
every baseline runs at the same exact budget, on the same protocol and backbones (RecBole's LightGCN, NGCF, NeuMF):
ES, MR, PEP, OptEmbed, magnitude pruning, MDE (the frequency power rule), ESAPN and CIESS, and RecBole's own models as
references. A killed run continues when its command is rerun; several budgets run in one command; BET's retrainings
and the budgets can run as ray tasks.

Install torch first (`pip install torch==2.13.0`: a plain `torch` requirement pulls a CUDA build), then this package;
then `recbole-bet --model=LightGCN --dataset=ml-100k --sparsity=0.9`. The usage, every key, every method's
adaptation to a budget and the measured results are in the source repository's README and docs/.
"""

setup(
    name="recbole-bet",
    version="0.1.0",
    description="Budgeted embedding tables for RecBole: BET (Qu et al., WSDM 2024) and every baseline (ES, MR, PEP, OptEmbed, magnitude pruning, MDE, ESAPN, CIESS) under one hard parameter budget",
    long_description=LONG_DESCRIPTION,
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
        # RecBole 1.2.1 breaks with newer releases of these (README, "Why the pins"):
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
    # serve: an inner-product index for recbole_bet.serve (Recommender.load(path, index="faiss")); 1.15.1 tested with numpy 1.26
    extras_require={"test": ["pytest", "hypothesis"], "serve": ["faiss-cpu"]},
    entry_points={
        "console_scripts": [
            "recbole-bet=recbole_bet.quick_start:main",
            "recbole-bet-convert=recbole_bet.convert:main",
        ]
    },
)
