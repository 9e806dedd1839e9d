/* error.h: names for signals, beside the error table of error.c. */
#ifndef SUBITER_ERROR_H
#define SUBITER_ERROR_H

/* "SIGSEGV", …; "signal N" style text is the caller's for unknown ones. */
SUBITER__HIDDEN const char *subiter__signame(int sig);

#endif /* SUBITER_ERROR_H */
