"""pytest plugins that fp4stack loads into test runs, upstream venvs included."""
