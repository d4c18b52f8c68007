"""The last module the torch-preloaded server imports: it freezes what the preload created.

``gc.freeze()`` moves every object the server holds by now (torch's, elastic's,
the launcher's: a few hundred thousand) to the permanent generation, as the
``gc`` documentation advises before forking. The agent and the workers forked
from the server then never walk those objects in a collection (a full one
takes about 100 ms here) nor write to their pages, which stay shared.
"""

import gc

gc.freeze()
