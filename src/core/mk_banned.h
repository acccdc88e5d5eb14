/*
 * mk_banned: functions that must not appear in Mayak's sources, force-included into
 * every translation unit of ours. Each is unbounded or not thread-safe; use the
 * replacement named beside it. Using one is a compile error.
 */
#ifndef MK_BANNED_H
#define MK_BANNED_H

/* System headers are included first so their own declarations are unaffected. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MK_BANNED(fn) sorry_##fn##_is_banned_in_mayak

#undef strcpy
#define strcpy(...) MK_BANNED(strcpy)       /* use memcpy with a known length, or mk_buf */
#undef strcat
#define strcat(...) MK_BANNED(strcat)       /* use mk_buf_append */
#undef strncpy
#define strncpy(...) MK_BANNED(strncpy)     /* does not terminate; use snprintf("%s") */
#undef strncat
#define strncat(...) MK_BANNED(strncat)
#undef sprintf
#define sprintf(...) MK_BANNED(sprintf)     /* use snprintf or mk_buf_printf */
#undef vsprintf
#define vsprintf(...) MK_BANNED(vsprintf)
#undef gets
#define gets(...) MK_BANNED(gets)
#undef strtok
#define strtok(...) MK_BANNED(strtok)       /* not reentrant; use strtok_r or slices */
#undef gmtime
#define gmtime(...) MK_BANNED(gmtime)       /* use gmtime_r */
#undef localtime
#define localtime(...) MK_BANNED(localtime) /* use localtime_r */
#undef asctime
#define asctime(...) MK_BANNED(asctime)
#undef ctime
#define ctime(...) MK_BANNED(ctime)
#undef atoi
#define atoi(...) MK_BANNED(atoi)           /* no error reporting; use strtol with checks */

#endif
