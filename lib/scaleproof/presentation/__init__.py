"""What each stage's notebook shows, one module per stage (named as the stage in `scaleproof.stages`), and
what they share (`common`). Everything here reads the stages' JSON results, never notebook outputs; the runner
renders the executed notebooks to HTML without code (`common.render_html`)."""
