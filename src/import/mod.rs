//! Importing a replaced system's data (filled in below).
