//! Secret formats: the key as the whole value (`raw`), one field of a JSON
//! object (`json`), or one `NAME=value` line (`env`). (Filled in by the store work.)
