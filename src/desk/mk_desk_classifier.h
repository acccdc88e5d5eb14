/*
 * mk_desk_classifier: the support desk's text classifier (triage), trained in
 * milliseconds from a few example messages per class.
 *
 * A multinomial logistic regression over two kinds of features of one message:
 *  - sparse hashed features: Snowball stems (the knowledge base's tokenizer, so
 *    "принтеры" and "принтер" meet), stem bigrams, and character 3- and 4-grams of the
 *    stems with boundary marks (so typos and unknown inflections still overlap),
 *    counted, log-damped and L2-normalised. Each feature hashes to a row of the weight
 *    table; rows hold one weight per class.
 *  - the built-in dense embedding (mk_embed, 512 dimensions) scaled by dense_weight,
 *    which carries similarity the sparse features cannot see (shared n-grams across
 *    words, Kazakh suffixes).
 * Training is SGD on the softmax cross-entropy with L2 regularisation (weight
 * decay kept as one scale factor, so a step costs only the example's features),
 * a decaying step size and a fixed-seed shuffle: the same data gives the same model.
 *
 * Prediction returns a probability per class; the desk uses the largest as the
 * triage confidence and compares it with a threshold to decide "unsure" / "out of
 * scope". Thread safety: a trained classifier is immutable; predictions from many
 * threads at once are safe (the tokenizer inside the kb serialises itself).
 */
#ifndef MK_DESK_CLASSIFIER_H
#define MK_DESK_CLASSIFIER_H

#include <stddef.h>
#include <stdint.h>

/* Classes one classifier can tell apart: CLINC150 has 151 with out-of-scope; a desk
 * has a handful of agents. The cap bounds the per-prediction scratch. */
#define MK_DESK_CLASSIFIER_MAX_CLASSES 1024
/* Training examples: CLINC150's train split is 15,100. */
#define MK_DESK_CLASSIFIER_MAX_EXAMPLES 1000000
/* Bytes of a message that are read (the rest is ignored: a class shows early). */
#define MK_DESK_CLASSIFIER_MAX_TEXT_BYTES 4096

typedef struct mk_desk_classifier mk_desk_classifier;

struct mk_desk_classifier_opts {
    uint32_t epochs;        /* passes over the data; 0 = 12 */
    double learning_rate;   /* initial SGD step; 0 = 0.5 */
    double l2;              /* L2 strength per example; 0 = 1e-5 */
    uint32_t hash_bits;     /* sparse rows = 2^hash_bits; 0 = chosen from the class count
                               (2^18 rows for a few classes, fewer for many: table <= 64 MB) */
    double dense_weight;    /* scale of the dense embedding features; 0 = 1.5; < 0 = none */
    uint64_t seed;          /* shuffle seed; 0 = a fixed default */
};

/* Trains a classifier on texts[i] (NUL-terminated UTF-8; invalid bytes act as
 * spaces) with labels[i] in [0, nclasses). Every class should have examples; a class
 * without any is never predicted. opts may be NULL (defaults).
 * Returns 0 and *out (free with mk_desk_classifier_free); MK_EINVAL (n == 0, a label
 * out of range, nclasses < 2 or > MK_DESK_CLASSIFIER_MAX_CLASSES, n too large, NULL
 * arguments), MK_ENOMEM. */
int mk_desk_classifier_train(const char *const *texts, const int *labels, size_t n, size_t nclasses,
                             const struct mk_desk_classifier_opts *opts, mk_desk_classifier **out);
void mk_desk_classifier_free(mk_desk_classifier *c);

size_t mk_desk_classifier_classes(const mk_desk_classifier *c);

/* Class probabilities of text[0..len) into probs[0..nclasses) (they sum to 1).
 * Returns the most probable class (>= 0), or MK_EINVAL / MK_ENOMEM. */
int mk_desk_classifier_predict(const mk_desk_classifier *c, const char *text, size_t len, double *probs);

#endif
