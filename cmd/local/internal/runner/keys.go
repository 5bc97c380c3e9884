package runner

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/chronicle-go/chronicle/infra/iamcheck"
)

// createKeys makes each KMS key of the template on the emulator, under the
// alias alias/<stack>-<logical id>: a key found under its alias is kept, so
// that the users' wrapped data keys of a persisted run (make run PERSIST=1)
// still unwrap, as long as the emulator kept the key too. moto keeps
// nothing: after a restart, the wrapped keys of the old key no longer open,
// and a persisted stack's personal data reads as unreadable (docs/forget.md).
func (r *Runner) createKeys(ctx context.Context) error {
	var ids []string
	for id, t := range r.res.types {
		if t == iamcheck.TypeKMSKey {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	if len(ids) == 0 {
		return nil
	}
	client := kms.NewFromConfig(r.cfg.AWS)
	for _, id := range ids {
		alias := "alias/" + r.res.physicalName(id)
		out, err := client.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(alias)})
		var missing *kmstypes.NotFoundException
		switch {
		case err == nil:
			r.res.keys[id] = aws.ToString(out.KeyMetadata.KeyId)
			continue
		case !errors.As(err, &missing):
			return fmt.Errorf("KMS key %s: %w", id, err)
		}
		created, err := client.CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String(r.res.physicalName(id))})
		if err != nil {
			return fmt.Errorf("create KMS key %s: %w", id, err)
		}
		keyID := aws.ToString(created.KeyMetadata.KeyId)
		if _, err := client.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String(alias), TargetKeyId: aws.String(keyID)}); err != nil {
			return fmt.Errorf("alias KMS key %s: %w", id, err)
		}
		r.res.keys[id] = keyID
	}
	return nil
}
