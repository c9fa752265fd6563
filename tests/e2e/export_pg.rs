//! (placeholder: tests land with issues 6/7)
