"""Where data comes from: settings, locations, the URL policy and HTTP, the
URL cache, archives opened safely, and the process pool."""
