"""recbole-bet: budgeted embedding tables for RecBole (BET, Qu et al., WSDM 2024) and the baselines it compares with.

Importing the package first sets how long OpenMP threads spin and the CPU thread count for a machine that other runs may
share (:mod:`recbole_bet.threads`): this must happen before torch is loaded.
"""

from recbole_bet.threads import configure as _configure_threads

_configure_threads()
