"""The parts of ``AsyncClient``, one job each; ``ctrader_typed.client`` puts them together.

From the top down (a module imports only modules below it; ``pyproject.toml``'s
``[tool.importlinter]`` contract holds the code to it):

* ``supervisor`` - opens links, reconnects with backoff, waits out maintenance, restores
  the session, reacts to the server's session events;
* ``pipeline`` - sends requests: waits for a usable link, paces them, retries rate-limit
  refusals, correlates answers, applies timeouts, renews a refused held token, records
  what a successful request means for the session;
* ``tokens`` - the token keeper: the held token set, its refresh schedule, store-before-use;
* ``router`` - delivers what arrives: routes, handlers, streams, unknown payload types;
* ``orders`` - order outcomes: execution events per order, waiting for the terminal one;
* ``maintenance`` - the maintenance the server announced, and the cap on waiting for it;
* ``session`` - what a reconnect must re-make (sans-IO);
* ``state`` - the client's lifecycle state, its allowed transitions and the current link;
* ``scrubbing``, ``tasks``, ``options`` - secrets kept out of texts, the client's tasks,
  the settings with their defaults.
"""
