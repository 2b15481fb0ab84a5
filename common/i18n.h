/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <libintl.h>
#include <locale.h>

#define _(s) gettext(s)
#define N_(s) (s)
