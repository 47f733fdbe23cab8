/* The not-found page needs no script; the shared one (common.js) runs the header. */
