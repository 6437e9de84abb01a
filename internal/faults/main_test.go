package faults_test

import (
	"testing"

	"github.com/tenantwal/tenantwal/internal/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }
