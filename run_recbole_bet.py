"""Train a RecBole backbone under an embedding budget.

    python run_recbole_bet.py --model=LightGCN --dataset=ml-100k --sparsity=0.9 --method=es

Every other --key=value is a RecBole or recbole-bet key (see properties/overall.yaml).
"""

import sys

from recbole_bet.quick_start import main

if __name__ == "__main__":
    sys.exit(main())
