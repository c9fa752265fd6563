//! Linking to an anchor scale (see the module docs of each method).
