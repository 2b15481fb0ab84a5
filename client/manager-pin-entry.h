/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

#include <gtk/gtk.h>

#include "pin.h"

/* A field for a PIN that no other process of the session can read.
 *
 * GTK 4.8's GtkPasswordEntry keeps its text in locked memory but hands it
 * out in plain text to any AT-SPI client (its Text interface). This widget
 * is no GtkEditable: it takes key presses itself into a Pin (mlock'ed,
 * wiped), draws one dot per character, and gives assistive technologies a
 * role and a name only, never the characters nor how many there are. It
 * takes no input method either, so a Vietnamese input method (Unikey,
 * Bamboo) cannot turn "aa" into "â" inside a PIN: the keys are the PIN. */
#define MANAGER_TYPE_PIN_ENTRY (manager_pin_entry_get_type())
G_DECLARE_FINAL_TYPE(ManagerPinEntry, manager_pin_entry, MANAGER, PIN_ENTRY, GtkWidget)

/* label: the accessible name ("PIN", "New PIN", …). */
GtkWidget *manager_pin_entry_new(const char *label);

/* How many characters were typed. */
size_t manager_pin_entry_get_length(ManagerPinEntry *entry);

/* Whether two entries hold the same PIN, compared in place. */
gboolean manager_pin_entry_equal(ManagerPinEntry *a, ManagerPinEntry *b);

/* Hands the PIN over (the entry is empty afterwards); NULL when nothing
 * was typed or memory could not be locked. Free with pin_free(). */
Pin *manager_pin_entry_take(ManagerPinEntry *entry);

/* Wipes what was typed. */
void manager_pin_entry_clear(ManagerPinEntry *entry);

/* Signals: "changed" after each key that changed the PIN, "activate" on
 * Enter. */
